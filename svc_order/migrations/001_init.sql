-- Orders: carts, orders with their item snapshots and status history, and Idempotency-Key claims.

-- One row per cart line; the cart is the user's lines. The nil UUID in variant_id is "no variant"
-- (a primary key column cannot be NULL); the API shows it as null.
CREATE TABLE cart_items (
    user_id    uuid        NOT NULL,
    product_id uuid        NOT NULL,
    variant_id uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    quantity   int         NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_at   timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id, variant_id)
);

-- Order numbers: ORD-<date in Vietnam>-<this sequence, at least 6 digits>; gaps are harmless.
CREATE SEQUENCE order_number_seq;

CREATE TABLE orders (
    id               uuid          PRIMARY KEY,
    user_id          uuid          NOT NULL,
    order_number     text          NOT NULL UNIQUE,
    status           text          NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'PROCESSING', 'SHIPPED',
                                                               'DELIVERED', 'CANCELLED', 'FAILED', 'REFUNDED')),
    payment_status   text          NOT NULL CHECK (payment_status IN ('PENDING', 'PAID', 'FAILED', 'CANCELLED',
                                                                       'REFUNDED')),
    payment_method   text          NOT NULL CHECK (payment_method IN ('vnpay', 'momo', 'zalopay')),
    currency         text          NOT NULL DEFAULT 'VND',
    subtotal         numeric(18,2) NOT NULL CHECK (subtotal >= 0),
    discount_amount  numeric(18,2) NOT NULL CHECK (discount_amount >= 0 AND discount_amount <= subtotal),
    shipping_fee     numeric(18,2) NOT NULL CHECK (shipping_fee >= 0),
    total_amount     numeric(18,2) NOT NULL CHECK (total_amount = subtotal - discount_amount + shipping_fee),
    item_count       int           NOT NULL CHECK (item_count > 0),
    discount_code    text,
    shipping_address jsonb         NOT NULL,
    -- End of the payment window: the sweeper cancels a PENDING order past it.
    expires_at       timestamptz   NOT NULL,
    payment_id       uuid,
    transaction_id   text,
    paid_at          timestamptz,
    cancel_reason    text,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX orders_of_user ON orders (user_id, created_at DESC, id);
CREATE INDEX orders_unpaid ON orders (expires_at) WHERE status = 'PENDING';

-- What was bought, as it was when bought (name, price, image): history never changes with the catalog.
CREATE TABLE order_items (
    order_id      uuid          NOT NULL REFERENCES orders (id),
    line_no       int           NOT NULL,
    product_id    uuid          NOT NULL,
    variant_id    uuid,
    product_name  text          NOT NULL,
    variant_name  text,
    product_image text,
    seller_id     uuid,
    unit_price    numeric(18,2) NOT NULL CHECK (unit_price >= 0),
    quantity      int           NOT NULL CHECK (quantity > 0),
    total_price   numeric(18,2) GENERATED ALWAYS AS (unit_price * quantity) STORED,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_of_seller ON order_items (seller_id, order_id);

-- Every status an order went through, who moved it and why.
CREATE TABLE order_history (
    id         bigserial   PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id),
    status     text        NOT NULL,
    note       text        NOT NULL DEFAULT '',
    actor      uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_of_order ON order_history (order_id, id);

-- Idempotency-Key claims (Stripe's semantics), scoped to the user. The claim is inserted in the
-- checkout's own transaction, so a concurrent duplicate waits on it and then replays what it stored
-- (or, when that transaction rolled back, runs the checkout itself). Kept ORDER_IDEMPOTENCY_HOURS (24).
CREATE TABLE idempotency_keys (
    user_id     uuid        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    status      int,
    response    bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
