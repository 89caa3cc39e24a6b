-- One payment per order, created from `order.created`. `reference` is what the gateway knows it by
-- (vnp_TxnRef, MoMo orderId, ZaloPay app_trans_id); it is set when the buyer's gateway session opens.
CREATE TABLE payments (
    id                 uuid PRIMARY KEY,
    order_id           uuid           NOT NULL UNIQUE,
    order_number       text           NOT NULL,
    user_id            uuid           NOT NULL,
    method             text           NOT NULL,
    amount             numeric(18, 2) NOT NULL,
    currency           text           NOT NULL DEFAULT 'VND',
    status             text           NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED',
                           'CANCELLED', 'REFUND_REQUIRED', 'PARTIALLY_REFUNDED', 'REFUNDED')),
    expires_at         timestamptz,
    reference          text UNIQUE,
    gateway_url        text,
    session_at         timestamptz,
    client_ip          text,
    -- What the gateway last said for good ('paid' or 'failed'); a repeat of it changes nothing.
    gateway_result     text CHECK (gateway_result IN ('paid', 'failed')),
    transaction_id     text,
    paid_at            timestamptz,
    failure_code       text,
    failure_reason     text,
    refunded_amount    numeric(18, 2) NOT NULL DEFAULT 0
                           CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    order_cancelled_at timestamptz,
    checked_at         timestamptz,
    created_at         timestamptz    NOT NULL DEFAULT now(),
    updated_at         timestamptz    NOT NULL DEFAULT now()
);
-- Reconciliation scans opened sessions the gateway has not settled yet.
CREATE INDEX payments_unsettled ON payments (session_at)
    WHERE gateway_result IS NULL AND status IN ('PENDING', 'CANCELLED');

-- `order.cancelled` that arrived before its `order.created`: the payment is then born CANCELLED.
CREATE TABLE early_cancellations (
    order_id     uuid PRIMARY KEY,
    reason       text        NOT NULL,
    cancelled_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refunds (
    id                uuid PRIMARY KEY,
    payment_id        uuid           NOT NULL REFERENCES payments (id),
    amount            numeric(18, 2) NOT NULL CHECK (amount > 0),
    status            text           NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    reason            text           NOT NULL DEFAULT '',
    requested_by      text           NOT NULL,
    gateway_refund_id text,
    failure_reason    text,
    attempts          int            NOT NULL DEFAULT 0,
    attempted_at      timestamptz,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    completed_at      timestamptz
);
CREATE INDEX refunds_of_payment ON refunds (payment_id);
CREATE INDEX refunds_pending ON refunds (attempted_at) WHERE status = 'PENDING';

-- Every signature-checked notice (IPN, callback or query answer) with what it did: the audit trail.
CREATE TABLE gateway_notices (
    id          bigserial PRIMARY KEY,
    payment_id  uuid REFERENCES payments (id),
    method      text        NOT NULL,
    source      text        NOT NULL CHECK (source IN ('ipn', 'query')),
    reference   text        NOT NULL,
    paid        boolean     NOT NULL,
    amount      numeric(18, 2) NOT NULL,
    code        text        NOT NULL,
    outcome     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_notices_of_payment ON gateway_notices (payment_id);
