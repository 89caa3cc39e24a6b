"""svc_discount's SQL, as constants."""

from __future__ import annotations

_DISCOUNT = """
SELECT d.*, c.active AS campaign_active, c.starts_at AS campaign_starts_at, c.ends_at AS campaign_ends_at
FROM discounts d LEFT JOIN campaigns c ON c.id = d.campaign_id
"""
DISCOUNT_BY_CODE = _DISCOUNT + "WHERE lower(d.code) = lower($1)"
DISCOUNT_BY_ID = _DISCOUNT + "WHERE d.id = $1"
DISCOUNT_FOR_UPDATE = DISCOUNT_BY_ID + " FOR UPDATE OF d"
AUTOMATIC = _DISCOUNT + "WHERE d.auto_apply AND d.active"
USER_USES = """
SELECT count(*) FROM discount_usages WHERE discount_id = $1 AND user_id = $2 AND state <> 'RELEASED'
"""
USER_USES_OF_MANY = """
SELECT discount_id, count(*) AS uses FROM discount_usages
WHERE discount_id = ANY($1::uuid[]) AND user_id = $2 AND state <> 'RELEASED'
GROUP BY discount_id
"""

# Takes one usage, atomically against the total limit; the row lock it leaves serialises the
# per-user check that follows in the same transaction.
TAKE_USAGE = """
UPDATE discounts SET used_count = used_count + 1
WHERE id = $1 AND (usage_limit IS NULL OR used_count < usage_limit)
RETURNING id
"""
INSERT_USAGE = """
INSERT INTO discount_usages (order_id, discount_id, user_id, amount, state)
VALUES ($1, $2, $3, $4, 'RESERVED')
ON CONFLICT (order_id) DO NOTHING
RETURNING order_id
"""
USAGE_OF_ORDER = """
SELECT u.*, d.code FROM discount_usages u JOIN discounts d ON d.id = u.discount_id WHERE u.order_id = $1
"""
# The order was paid with it: a reserved usage becomes used; so does one its hold let expire meanwhile,
# which counts again (even past the limit: it was used). Never one a cancellation released.
CONFIRM_USAGE = """
WITH usage AS (
    SELECT order_id, discount_id, state FROM discount_usages
    WHERE order_id = $1 AND (state = 'RESERVED' OR released_by = 'expiry')
    FOR UPDATE
), used AS (
    UPDATE discount_usages u SET state = 'USED', released_by = NULL, updated_at = now()
    FROM usage WHERE u.order_id = usage.order_id
    RETURNING usage.discount_id, usage.state AS was
)
UPDATE discounts SET used_count = used_count + 1
WHERE id = (SELECT discount_id FROM used WHERE was = 'RELEASED')
"""
# Frees a usage (reserved, or used by an order cancelled later) and gives the count back, once; marks one
# an expiry freed already as cancelled, so a late confirmation cannot bring it back.
RELEASE_USAGE = """
WITH usage AS (
    SELECT order_id, discount_id, state FROM discount_usages
    WHERE order_id = $1 AND released_by IS DISTINCT FROM 'cancellation'
    FOR UPDATE
), freed AS (
    UPDATE discount_usages u SET state = 'RELEASED', released_by = 'cancellation', updated_at = now()
    FROM usage WHERE u.order_id = usage.order_id
    RETURNING usage.discount_id, usage.state AS was
)
UPDATE discounts SET used_count = used_count - 1
WHERE id = (SELECT discount_id FROM freed WHERE was <> 'RELEASED')
"""
# Frees usages RESERVED for longer than $1 (oldest first, at most $2; rows another transaction holds
# are left for the next round) and gives their counts back, locking the discounts in id order so
# two runs never deadlock. Returns how many it freed.
EXPIRE_HELD_USAGES = """
WITH due AS (
    SELECT order_id FROM discount_usages
    WHERE state = 'RESERVED' AND created_at <= now() - $1::interval
    ORDER BY created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), freed AS (
    UPDATE discount_usages u SET state = 'RELEASED', released_by = 'expiry', updated_at = now()
    FROM due WHERE u.order_id = due.order_id AND u.state = 'RESERVED'
    RETURNING u.discount_id
), counts AS (
    SELECT discount_id, count(*)::int AS n FROM freed GROUP BY discount_id
), locked AS MATERIALIZED (
    SELECT d.id FROM discounts d JOIN counts c ON c.discount_id = d.id ORDER BY d.id FOR UPDATE OF d
), given_back AS (
    UPDATE discounts d SET used_count = d.used_count - c.n
    FROM counts c JOIN locked l ON l.id = c.discount_id
    WHERE d.id = c.discount_id
    RETURNING c.n
)
SELECT coalesce(sum(n), 0)::int FROM given_back
"""

_COLUMNS = (
    "code, name, kind, value, min_subtotal, max_discount, starts_at, ends_at, usage_limit, per_user_limit,"
    " scope, category_ids, product_ids, auto_apply, active, campaign_id"
)
INSERT_DISCOUNT = f"""
INSERT INTO discounts (id, {_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
RETURNING *
"""
UPDATE_DISCOUNT = f"""
UPDATE discounts SET ({_COLUMNS}, updated_at) =
    ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
WHERE id = $1
RETURNING *
"""
DEACTIVATE_DISCOUNT = "UPDATE discounts SET active = false, updated_at = now() WHERE id = $1 RETURNING id"
LIST_DISCOUNTS = """
SELECT *, count(*) OVER () AS total FROM discounts
WHERE ($1::text IS NULL OR code ILIKE $1 OR name ILIKE $1) AND ($2::boolean IS NULL OR active = $2)
ORDER BY {order}
LIMIT $3 OFFSET $4
"""
COUNT_DISCOUNTS = """
SELECT count(*) FROM discounts
WHERE ($1::text IS NULL OR code ILIKE $1 OR name ILIKE $1) AND ($2::boolean IS NULL OR active = $2)
"""
USAGES_OF_DISCOUNT = """
SELECT u.*, d.code, count(*) OVER () AS total FROM discount_usages u JOIN discounts d ON d.id = u.discount_id
WHERE u.discount_id = $1 ORDER BY u.created_at DESC, u.order_id LIMIT $2 OFFSET $3
"""
USAGES_OF_USER = """
SELECT u.*, d.code, count(*) OVER () AS total FROM discount_usages u JOIN discounts d ON d.id = u.discount_id
WHERE u.user_id = $1 ORDER BY u.created_at DESC, u.order_id LIMIT $2 OFFSET $3
"""

_CAMPAIGN = """
SELECT c.*, (SELECT count(*) FROM discounts d WHERE d.campaign_id = c.id) AS discount_count FROM campaigns c
"""
CAMPAIGN = _CAMPAIGN + "WHERE c.id = $1"
CAMPAIGN_FOR_UPDATE = CAMPAIGN + " FOR UPDATE OF c"
LIST_CAMPAIGNS = (
    _CAMPAIGN
    + """
WHERE ($1::text IS NULL OR c.name ILIKE $1) AND ($2::boolean IS NULL OR c.active = $2)
ORDER BY c.starts_at DESC, c.id LIMIT $3 OFFSET $4
"""
)
COUNT_CAMPAIGNS = """
SELECT count(*) FROM campaigns c
WHERE ($1::text IS NULL OR c.name ILIKE $1) AND ($2::boolean IS NULL OR c.active = $2)
"""
INSERT_CAMPAIGN = """
INSERT INTO campaigns (id, name, description, kind, starts_at, ends_at, active)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
"""
UPDATE_CAMPAIGN = """
UPDATE campaigns SET (name, description, kind, starts_at, ends_at, active, updated_at) =
    ($2, $3, $4, $5, $6, $7, now())
WHERE id = $1 RETURNING id
"""
DEACTIVATE_CAMPAIGN = "UPDATE campaigns SET active = false, updated_at = now() WHERE id = $1 RETURNING id"
