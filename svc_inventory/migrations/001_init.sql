-- Inventory: PostgreSQL is the source of truth; Redis (svc_inventory.lua) screens reservations in front.
CREATE TABLE warehouses (
    id         uuid PRIMARY KEY,
    code       text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO warehouses (id, code, name) VALUES ('00000000-0000-0000-0000-000000000001', 'MAIN', 'Main warehouse');

-- What svc_product told us (product.created / product.deleted): who may set a product's stock.
CREATE TABLE products (
    product_id uuid PRIMARY KEY,
    seller_id  uuid NOT NULL,
    deleted_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per product and variant; the nil UUID is the product itself. available = on_hand - reserved.
CREATE TABLE stock (
    product_id          uuid        NOT NULL,
    variant_id          uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    warehouse_id        uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000001'
                                    REFERENCES warehouses (id),
    on_hand             int         NOT NULL CHECK (on_hand >= 0),
    reserved            int         NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    low_stock_threshold int         NOT NULL DEFAULT 10 CHECK (low_stock_threshold >= 0),
    -- Set when available fell to the threshold and the alert went out; cleared when it rises above,
    -- so inventory.low-stock fires once per crossing, not on every sale.
    low_alerted         boolean     NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, variant_id),
    -- The last line of defence: PostgreSQL itself refuses to record an oversold unit.
    CHECK (reserved <= on_hand)
);
CREATE INDEX stock_low ON stock (product_id) WHERE on_hand - reserved <= low_stock_threshold;

CREATE TABLE reservations (
    order_id   uuid PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('RESERVED', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    expires_at timestamptz NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE state = 'RESERVED';

CREATE TABLE reservation_lines (
    order_id   uuid NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
    product_id uuid NOT NULL,
    variant_id uuid NOT NULL,
    quantity   int  NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id, variant_id)
);
CREATE INDEX reservation_lines_product ON reservation_lines (product_id, variant_id);

-- Every movement of stock: what changed, by how much, why.
CREATE TABLE stock_log (
    id             bigserial PRIMARY KEY,
    product_id     uuid        NOT NULL,
    variant_id     uuid        NOT NULL,
    order_id       uuid,
    kind           text        NOT NULL CHECK (kind IN ('RESERVE', 'RELEASE', 'EXPIRE', 'COMMIT', 'ADJUST')),
    on_hand_delta  int         NOT NULL,
    reserved_delta int         NOT NULL,
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_log_product ON stock_log (product_id, variant_id, id);
