-- Trigram indexes make `search` a substring match on name, email and phone that stays fast at scale;
-- unaccent lets "duc" find "Đức".
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- How search text is compared: lower case, without accents. unaccent() is only STABLE because its
-- dictionary could be swapped; naming the dictionary makes the result fixed, hence safe to index.
CREATE FUNCTION search_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

-- One profile per verified account; the id is the auth user id (created from `user.verified`).
CREATE TABLE profiles (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    full_name     text        NOT NULL,
    phone         text,
    date_of_birth date,
    preferences   jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    search_text   text GENERATED ALWAYS AS (
        search_fold(full_name || ' ' || email || ' ' || coalesce(phone, ''))
    ) STORED
);
CREATE INDEX profiles_search ON profiles USING gin (search_text gin_trgm_ops);
CREATE INDEX profiles_created ON profiles (created_at, id);

CREATE TABLE addresses (
    id          uuid PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    full_name   text        NOT NULL,
    phone       text        NOT NULL,
    line1       text        NOT NULL,
    line2       text,
    city        text        NOT NULL,
    district    text,
    country     text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    postal_code text,
    is_default  boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user ON addresses (user_id, created_at);
-- At most one default per user, whatever the races.
CREATE UNIQUE INDEX addresses_one_default ON addresses (user_id) WHERE is_default;

-- The avatar bytes, apart from the profile so that reading a profile never touches them. `etag` is the
-- SHA-256 of the bytes: the ETag, the cache-busting version in `avatarUrl`, and the object key if the
-- bytes ever move to object storage.
CREATE TABLE avatars (
    user_id      uuid PRIMARY KEY REFERENCES profiles (id) ON DELETE CASCADE,
    content_type text        NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    etag         text        NOT NULL,
    data         bytea       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- PNG, JPEG and WebP are compressed already: store them out of line without another compression pass.
ALTER TABLE avatars ALTER COLUMN data SET STORAGE EXTERNAL;
