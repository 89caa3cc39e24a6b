"""svc_payment's SQL, as constants asyncpg prepares once per connection."""

from __future__ import annotations

PAYMENT_COLUMNS = (
    "id, order_id, order_number, user_id, method, amount, currency, status, expires_at, reference,"
    " gateway_url, session_at, gateway_result, transaction_id, paid_at, failure_code, failure_reason,"
    " refunded_amount, created_at"
)

# Serialises the two order-event handlers of one order (they arrive on different queues).
LOCK_ORDER = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))"

# A payment opened once per order: $8 the status its order asks for (PENDING, or FAILED when no gateway
# can take it), CANCELLED instead when the order's cancellation came first (early_cancellations, taken
# here, in the same round trip). Its id and status; nothing when the order already has one.
OPEN_PAYMENT = """
WITH early AS (
    DELETE FROM early_cancellations WHERE order_id = $2 RETURNING true
), opened AS (
    SELECT CASE WHEN EXISTS (SELECT FROM early) THEN 'CANCELLED' ELSE $8::text END AS status
)
INSERT INTO payments (id, order_id, order_number, user_id, method, amount, currency, status, expires_at,
                      failure_code, failure_reason, order_cancelled_at)
SELECT $1, $2, $3, $4, $5, $6, $7, o.status, $9, $10, $11, CASE WHEN o.status = 'CANCELLED' THEN now() END
FROM opened o
ON CONFLICT (order_id) DO NOTHING
RETURNING id, status
"""
RECORD_EARLY_CANCELLATION = (
    "INSERT INTO early_cancellations (order_id, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)

CANCEL_ORDER = """
UPDATE payments
SET order_cancelled_at = coalesce(order_cancelled_at, now()),
    status = CASE status WHEN 'PENDING' THEN 'CANCELLED' WHEN 'SUCCEEDED' THEN 'REFUND_REQUIRED'
             ELSE status END,
    updated_at = now()
WHERE order_id = $1
RETURNING id, status
"""

PAYMENT_BY_ORDER = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1"
PAYMENT_BY_ID_FOR_UPDATE = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
PAYMENT_BY_REFERENCE = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE reference = $1"
PAYMENT_BY_REFERENCE_FOR_UPDATE = f"{PAYMENT_BY_REFERENCE} FOR UPDATE"
PAYMENTS_BY_IDS = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ANY($1::uuid[])"

OPEN_SESSION = """
UPDATE payments SET reference = $2, gateway_url = $3, session_at = $4, client_ip = $5, updated_at = now()
WHERE id = $1
"""

SETTLE = """
UPDATE payments
SET status = $2, gateway_result = $3, transaction_id = coalesce($4, transaction_id),
    paid_at = coalesce($5, paid_at), failure_code = $6, failure_reason = $7, updated_at = now()
WHERE id = $1
"""

RECORD_NOTICE = """
INSERT INTO gateway_notices (payment_id, method, source, reference, paid, amount, code, outcome)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

# Opened sessions the gateway has not settled after $1 seconds, each looked at again every $2 s; a
# day after the session the gateway's own expiry has long settled it.
CLAIM_UNSETTLED = f"""
UPDATE payments p SET checked_at = now()
FROM (
    SELECT id FROM payments
    WHERE gateway_result IS NULL AND status IN ('PENDING', 'CANCELLED')
      AND session_at < now() - make_interval(secs => $1) AND session_at > now() - interval '1 day'
      AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => $2))
    ORDER BY session_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) due
WHERE p.id = due.id
RETURNING {", ".join(f"p.{c.strip()}" for c in PAYMENT_COLUMNS.split(","))}
"""

REFUND_COLUMNS = "id, payment_id, amount, reason, requested_by, created_at"

PENDING_REFUNDS = "SELECT coalesce(sum(amount), 0) FROM refunds WHERE payment_id = $1 AND status = 'PENDING'"

INSERT_REFUND = f"""
INSERT INTO refunds (id, payment_id, amount, status, reason, requested_by, attempts, attempted_at)
VALUES ($1, $2, $3, 'PENDING', $4, $5, 1, now())
RETURNING {REFUND_COLUMNS}
"""

FINISH_REFUND = """
UPDATE refunds SET status = $2, gateway_refund_id = $3, failure_reason = $4, completed_at = now()
WHERE id = $1 AND status = 'PENDING'
RETURNING payment_id, amount
"""

APPLY_REFUND = """
UPDATE payments
SET refunded_amount = refunded_amount + $2,
    status = CASE WHEN refunded_amount + $2 >= amount THEN 'REFUNDED' ELSE 'PARTIALLY_REFUNDED' END,
    updated_at = now()
WHERE id = $1
RETURNING order_id, order_number, user_id, status, refunded_amount
"""

# Refunds whose gateway answer was lost, sent again (with the same refund id) after $1 seconds.
CLAIM_PENDING_REFUNDS = f"""
UPDATE refunds r SET attempts = attempts + 1, attempted_at = now()
FROM (
    SELECT id FROM refunds
    WHERE status = 'PENDING' AND attempted_at < now() - make_interval(secs => $1)
    ORDER BY attempted_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id
RETURNING {", ".join(f"r.{c.strip()}" for c in REFUND_COLUMNS.split(","))}
"""

REFUND_STATE = """
SELECT r.status, p.status AS payment_status, p.refunded_amount, p.order_id
FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.id = $1
"""
