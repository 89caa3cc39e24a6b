-- Discounts: coupons and automatic rules, campaigns (incl. flash sales), and every usage by order.
-- Money is numeric(18,2) in VND.
CREATE TABLE campaigns (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    kind        text        NOT NULL CHECK (kind IN ('STANDARD', 'FLASH_SALE')),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

CREATE TABLE discounts (
    id             uuid PRIMARY KEY,
    code           text          NOT NULL,
    name           text          NOT NULL,
    kind           text          NOT NULL CHECK (kind IN ('PERCENTAGE', 'FIXED_AMOUNT')),
    value          numeric(18,2) NOT NULL CHECK (value > 0 AND (kind <> 'PERCENTAGE' OR value <= 100)),
    min_subtotal   numeric(18,2) NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    max_discount   numeric(18,2) CHECK (max_discount > 0),
    starts_at      timestamptz,
    ends_at        timestamptz,
    usage_limit    int CHECK (usage_limit > 0),
    per_user_limit int CHECK (per_user_limit > 0),
    -- Usages RESERVED or USED: moved in the same transaction as the usage row, never counted.
    used_count     int           NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    scope          text          NOT NULL DEFAULT 'ALL' CHECK (scope IN ('ALL', 'CATEGORIES', 'PRODUCTS')),
    category_ids   uuid[]        NOT NULL DEFAULT '{}',
    product_ids    uuid[]        NOT NULL DEFAULT '{}',
    auto_apply     boolean       NOT NULL DEFAULT false,
    active         boolean       NOT NULL DEFAULT true,
    campaign_id    uuid REFERENCES campaigns (id),
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now()
);
-- Codes are case-insensitive and unique.
CREATE UNIQUE INDEX discounts_code ON discounts (lower(code));
CREATE INDEX discounts_automatic ON discounts (id) WHERE auto_apply AND active;
CREATE INDEX discounts_campaign ON discounts (campaign_id);

-- One usage per order: RESERVED by ApplyDiscount, USED on order.confirmed, RELEASED on order.cancelled.
CREATE TABLE discount_usages (
    order_id    uuid PRIMARY KEY,
    discount_id uuid          NOT NULL REFERENCES discounts (id),
    user_id     uuid          NOT NULL,
    amount      numeric(18,2) NOT NULL,
    state       text          NOT NULL CHECK (state IN ('RESERVED', 'USED', 'RELEASED')),
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX discount_usages_per_user ON discount_usages (discount_id, user_id) WHERE state <> 'RELEASED';
CREATE INDEX discount_usages_of_discount ON discount_usages (discount_id, created_at DESC);
CREATE INDEX discount_usages_of_user ON discount_usages (user_id, created_at DESC);
