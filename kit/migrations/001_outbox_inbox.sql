-- The transactional outbox: a row written in the same transaction as the state change it announces,
-- published by kit.bus.OutboxRelay with publisher confirms, then marked sent.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    exchange     text        NOT NULL,
    routing_key  text        NOT NULL,
    payload      bytea       NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     int         NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- The inbox: event ids a consumer has processed, written in the handler's transaction, so a
-- redelivered event has no second effect.
CREATE TABLE inbox (
    event_id     uuid        NOT NULL,
    queue        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, queue)
);
