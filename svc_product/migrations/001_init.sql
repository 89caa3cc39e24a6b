-- The catalog: a category tree of any depth, brands, products with their variants, attributes, images and
-- reviews, and the names of review authors (a read model fed by user events).
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Search compares folded text: lower case, accents removed, so "cafe" finds "Café" and "da lat" finds
-- "Đà Lạt". unaccent() is only STABLE (it looks its dictionary up by name); pinned to one dictionary it
-- is immutable in practice, which generated columns and indexes require.
CREATE FUNCTION catalog_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

CREATE TABLE categories (
    id          uuid PRIMARY KEY,
    parent_id   uuid REFERENCES categories (id),
    name        text        NOT NULL,
    slug        text        NOT NULL UNIQUE,
    description text        NOT NULL DEFAULT '',
    position    int         NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id <> id)
);
CREATE INDEX categories_parent ON categories (parent_id);

-- A category and everything below it (writes refuse cycles, so the recursion ends).
CREATE FUNCTION category_subtree(root uuid) RETURNS SETOF uuid
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH RECURSIVE below AS (
        SELECT id FROM categories WHERE id = root
        UNION ALL
        SELECT c.id FROM categories c JOIN below b ON c.parent_id = b.id
    )
    SELECT id FROM below;
END;

-- The path from the root down to a category, as a JSON array of {id, name, slug}.
CREATE FUNCTION category_path(leaf uuid) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH RECURSIVE up AS (
        SELECT id, parent_id, name, slug, 0 AS depth FROM categories WHERE id = leaf
        UNION ALL
        SELECT c.id, c.parent_id, c.name, c.slug, up.depth + 1 FROM categories c JOIN up ON c.id = up.parent_id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'name', name, 'slug', slug) ORDER BY depth DESC),
                    '[]'::jsonb)
    FROM up;
END;

CREATE TABLE brands (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL,
    slug        text        NOT NULL UNIQUE,
    description text        NOT NULL DEFAULT '',
    logo_url    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX brands_name ON brands (lower(name));

-- Deleting a product sets deleted_at: orders and reviews keep pointing at a row that still exists.
CREATE TABLE products (
    id           uuid PRIMARY KEY,
    seller_id    uuid          NOT NULL,
    category_id  uuid          NOT NULL REFERENCES categories (id),
    brand_id     uuid REFERENCES brands (id),
    name         text          NOT NULL,
    slug         text          NOT NULL UNIQUE,
    description  text          NOT NULL DEFAULT '',
    price        numeric(14,2) NOT NULL CHECK (price >= 0),
    status       text          NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'inactive')),
    -- Kept current by each review in the review's transaction (the product row lock orders them).
    rating       numeric(3,2)  NOT NULL DEFAULT 0,
    rating_total int           NOT NULL DEFAULT 0,
    review_count int           NOT NULL DEFAULT 0,
    created_at   timestamptz   NOT NULL DEFAULT now(),
    updated_at   timestamptz   NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    -- Search reads these stored forms, so a search never folds a name at query time.
    folded_name  text GENERATED ALWAYS AS (catalog_fold(name)) STORED,
    document     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', catalog_fold(name)), 'A')
        || setweight(to_tsvector('simple', catalog_fold(description)), 'C')
    ) STORED
);
-- Whole words and word prefixes ("lapt:*") through the tsvector; any other fragment through trigrams.
-- Without fastupdate a new row goes straight into the index: the catalog is written rarely, and a
-- pending list (10,000 rows after the seed) would be scanned row by row by every search until vacuumed.
CREATE INDEX products_document ON products USING gin (document) WITH (fastupdate = off)
    WHERE deleted_at IS NULL;
CREATE INDEX products_name_trigrams ON products USING gin (folded_name gin_trgm_ops) WITH (fastupdate = off)
    WHERE deleted_at IS NULL;
CREATE INDEX products_category ON products (category_id) WHERE deleted_at IS NULL;
CREATE INDEX products_brand ON products (brand_id) WHERE deleted_at IS NULL;
CREATE INDEX products_seller ON products (seller_id) WHERE deleted_at IS NULL;
-- The public list's sort orders, so a page is read from an index instead of sorting the catalog.
CREATE INDEX products_by_created ON products (created_at DESC, id) WHERE deleted_at IS NULL AND status = 'active';
CREATE INDEX products_by_price ON products (price, id) WHERE deleted_at IS NULL AND status = 'active';
CREATE INDEX products_by_name ON products (name, id) WHERE deleted_at IS NULL AND status = 'active';
CREATE INDEX products_by_rating ON products (rating, id) WHERE deleted_at IS NULL AND status = 'active';

-- A variant's id is derived from its product and SKU, so replacing a product's variants keeps the ids
-- that carts refer to.
CREATE TABLE product_variants (
    id         uuid PRIMARY KEY,
    product_id uuid          NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position   int           NOT NULL,
    sku        text          NOT NULL UNIQUE,
    name       text          NOT NULL,
    price      numeric(14,2) NOT NULL CHECK (price >= 0),
    attributes jsonb         NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (product_id, position)
);

CREATE TABLE product_attributes (
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position   int  NOT NULL,
    name       text NOT NULL,
    value      text NOT NULL,
    PRIMARY KEY (product_id, position)
);

CREATE TABLE product_images (
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position   int  NOT NULL,
    url        text NOT NULL,
    alt_text   text NOT NULL DEFAULT '',
    PRIMARY KEY (product_id, position)
);

CREATE TABLE reviews (
    id         uuid PRIMARY KEY,
    product_id uuid        NOT NULL REFERENCES products (id),
    user_id    uuid        NOT NULL,
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, user_id)
);
CREATE INDEX reviews_by_product ON reviews (product_id, created_at DESC);
CREATE INDEX reviews_by_user ON reviews (user_id);

-- Display names of review authors, from user.verified and user.profile.updated; changed_at keeps a
-- late, older event from overwriting a newer name.
CREATE TABLE authors (
    user_id    uuid PRIMARY KEY,
    name       text        NOT NULL,
    changed_at timestamptz NOT NULL
);
