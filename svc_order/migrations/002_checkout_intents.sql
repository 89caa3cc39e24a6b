-- A checkout's intent, committed before it asks svc_discount and svc_inventory to hold anything, so a
-- checkout that dies before its order is created leaves a record of what to give back
-- (svc_order/intents.py). The order's own transaction deletes the row ("completed" is the order
-- itself); a compensated one is kept a day, then pruned.
CREATE TABLE checkout_intents (
    order_id       uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    -- [{productId, variantId, quantity}], as order.cancelled carries them.
    lines          jsonb       NOT NULL,
    -- The code asked for (NULL: none, though an automatic discount may still have been held).
    discount_code  text,
    state          text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'compensated')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    compensated_at timestamptz,
    CHECK ((state = 'compensated') = (compensated_at IS NOT NULL))
);
-- The recovery job's scan (open, oldest first) and the pruning of compensated rows.
CREATE INDEX checkout_intents_by_state ON checkout_intents (state, created_at);
