"""svc_inventory's SQL, as constants. Writers of stock take the shared stock lock (see engine.py)."""

from __future__ import annotations

import uuid

from kit.bus import RELAY_WOKEN, outbox_insert

PRODUCT_LEVEL = uuid.UUID(int=0)
"""The variant id of a product's own stock row (a product without variants)."""

# Serialises Redis against PostgreSQL: every writer holds it shared while it changes Redis and until
# its PostgreSQL change commits; a rebuild or reconciliation holds it exclusively, so it sees the two
# stores at rest. Session-level, released explicitly (or by the connection's death).
STOCK_LOCK = 0x1A7E_5106
LOCK_SHARED = "SELECT pg_advisory_lock_shared($1)"
UNLOCK_SHARED = "SELECT pg_advisory_unlock_shared($1)"
LOCK_EXCLUSIVE = "SELECT pg_advisory_lock($1)"
UNLOCK_EXCLUSIVE = "SELECT pg_advisory_unlock($1)"

_LEVEL = """
s.product_id, s.variant_id, s.on_hand, s.reserved, s.on_hand - s.reserved AS available,
s.low_stock_threshold, s.updated_at
"""
LEVELS_OF_PRODUCTS = f"""
SELECT {_LEVEL} FROM stock s LEFT JOIN products p USING (product_id)
WHERE s.product_id = ANY($1::uuid[]) AND p.deleted_at IS NULL
ORDER BY s.product_id, s.variant_id
"""
AVAILABILITY = """
SELECT k.product_id, k.variant_id, s.on_hand - s.reserved AS available
FROM unnest($1::uuid[], $2::uuid[]) AS k(product_id, variant_id)
JOIN stock s USING (product_id, variant_id) LEFT JOIN products p USING (product_id)
WHERE p.deleted_at IS NULL
"""
# The product page: one row, or every variant summed up.
LEVEL = """
SELECT s.product_id, sum(s.on_hand)::int AS on_hand, sum(s.reserved)::int AS reserved,
       sum(s.on_hand - s.reserved)::int AS available, min(s.low_stock_threshold) AS low_stock_threshold,
       max(s.updated_at) AS updated_at
FROM stock s LEFT JOIN products p USING (product_id)
WHERE s.product_id = $1 AND ($2::uuid IS NULL OR s.variant_id = $2) AND p.deleted_at IS NULL
GROUP BY s.product_id
"""
LOW_STOCK = f"""
SELECT {_LEVEL}, count(*) OVER () AS total
FROM stock s LEFT JOIN products p USING (product_id)
WHERE s.on_hand - s.reserved <= s.low_stock_threshold AND p.deleted_at IS NULL
ORDER BY s.on_hand - s.reserved, s.product_id, s.variant_id
LIMIT $1 OFFSET $2
"""
COUNT_LOW_STOCK = """
SELECT count(*) FROM stock s LEFT JOIN products p USING (product_id)
WHERE s.on_hand - s.reserved <= s.low_stock_threshold AND p.deleted_at IS NULL
"""
# A row's availability for Redis, read under a share lock so no writer of that row interleaves.
ROW_FOR_LOAD = """
SELECT s.on_hand - s.reserved AS available, p.deleted_at IS NOT NULL AS deleted
FROM stock s LEFT JOIN products p USING (product_id)
WHERE s.product_id = $1 AND s.variant_id = $2
FOR SHARE OF s
"""
ALL_ROWS = """
SELECT s.product_id, s.variant_id, s.on_hand - s.reserved AS available,
       coalesce(p.deleted_at IS NOT NULL, false) AS deleted
FROM stock s LEFT JOIN products p USING (product_id)
"""
ACTIVE_RESERVATIONS = """
SELECT r.order_id, (extract(epoch FROM r.expires_at) * 1000)::bigint AS expires_ms,
       array_agg(l.product_id ORDER BY l.product_id, l.variant_id) AS product_ids,
       array_agg(l.variant_id ORDER BY l.product_id, l.variant_id) AS variant_ids,
       array_agg(l.quantity ORDER BY l.product_id, l.variant_id) AS quantities
FROM reservations r JOIN reservation_lines l USING (order_id)
WHERE r.state = 'RESERVED'
GROUP BY r.order_id
"""
STATES = "SELECT order_id, state FROM reservations WHERE order_id = ANY($1::uuid[])"

# A batch's reservations ($1 orders, $2 expiries) with their lines ($3 order, $4 product, $5 variant,
# $6 quantity, for every order of the batch), the lines' moves in the stock log and their
# inventory.reserved events ($7-$12: kit.bus.outbox_insert, tagged with the order), in one round trip:
# only an order PostgreSQL did not hold yet is written, and returned.
RECORD_RESERVATIONS = f"""
WITH fresh AS (
    INSERT INTO reservations (order_id, state, expires_at)
    SELECT order_id, 'RESERVED', expires_at
    FROM unnest($1::uuid[], $2::timestamptz[]) AS r(order_id, expires_at)
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id
), l AS (
    SELECT * FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::int[])
        AS l(order_id, product_id, variant_id, quantity)
    WHERE order_id IN (SELECT order_id FROM fresh)
), lines AS (
    INSERT INTO reservation_lines (order_id, product_id, variant_id, quantity) SELECT * FROM l
), logged AS (
    INSERT INTO stock_log (product_id, variant_id, order_id, kind, on_hand_delta, reserved_delta)
    SELECT product_id, variant_id, order_id, 'RESERVE', 0, quantity FROM l
), announced AS (
    {outbox_insert(7, keep="e.tag IN (SELECT order_id FROM fresh)")}
)
SELECT order_id FROM fresh, {RELAY_WOKEN}
"""
RESERVATIONS_WITH_LINES = """
SELECT r.order_id, r.state, r.expires_at,
       array_agg(l.product_id ORDER BY l.product_id, l.variant_id) AS product_ids,
       array_agg(l.variant_id ORDER BY l.product_id, l.variant_id) AS variant_ids,
       array_agg(l.quantity ORDER BY l.product_id, l.variant_id) AS quantities
FROM reservations r JOIN reservation_lines l USING (order_id)
WHERE r.order_id = ANY($1::uuid[])
GROUP BY r.order_id
"""
# Moves reservations out of RESERVED (only from RESERVED: a second release, or a release after a
# commit, matches nothing); returns the lines of those it moved.
FINISH_RESERVATIONS = """
WITH moved AS (
    UPDATE reservations SET state = $2, reason = $3, updated_at = now()
    WHERE order_id = ANY($1::uuid[]) AND state = 'RESERVED' AND ($4 OR expires_at <= now())
    RETURNING order_id
)
SELECT l.order_id, l.product_id, l.variant_id, l.quantity
FROM reservation_lines l JOIN moved USING (order_id)
ORDER BY l.order_id, l.product_id, l.variant_id
"""
# A sale whose order was cancelled after all: COMMITTED -> RETURNED, once (a repeat, or a reservation
# that was released or expired, matches nothing); returns the lines whose units go back on hand.
RETURN_RESERVATION = """
WITH returned AS (
    UPDATE reservations SET state = 'RETURNED', reason = $2, updated_at = now()
    WHERE order_id = $1 AND state = 'COMMITTED'
    RETURNING order_id
)
SELECT l.order_id, l.product_id, l.variant_id, l.quantity
FROM reservation_lines l JOIN returned USING (order_id)
ORDER BY l.product_id, l.variant_id
"""
DUE_IN_DATABASE = """
SELECT order_id FROM reservations WHERE state = 'RESERVED' AND expires_at <= now() - $1::interval
ORDER BY expires_at LIMIT $2
"""

# Applies per-row deltas (each row once), in key order so concurrent writers never deadlock; returns
# whether each row just crossed its low-stock threshold downwards, and whether its availability just
# crossed zero (either way: the product's own may have too).
APPLY_DELTAS = """
WITH d AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[])
        AS d(product_id, variant_id, on_hand_delta, reserved_delta)
), locked AS MATERIALIZED (
    SELECT s.product_id, s.variant_id, s.low_alerted AS was_low, s.on_hand > s.reserved AS had_some
    FROM stock s JOIN d USING (product_id, variant_id)
    ORDER BY s.product_id, s.variant_id
    FOR UPDATE OF s
)
UPDATE stock s
SET on_hand = s.on_hand + d.on_hand_delta,
    reserved = s.reserved + d.reserved_delta,
    low_alerted = s.on_hand + d.on_hand_delta - s.reserved - d.reserved_delta <= s.low_stock_threshold,
    updated_at = now()
FROM d JOIN locked USING (product_id, variant_id)
WHERE s.product_id = d.product_id AND s.variant_id = d.variant_id
RETURNING s.product_id, s.variant_id, s.on_hand - s.reserved AS available, s.low_stock_threshold,
          s.low_alerted AND NOT locked.was_low AS crossed,
          (s.on_hand > s.reserved) <> locked.had_some AS flipped
"""
INSERT_LOG = """
INSERT INTO stock_log (product_id, variant_id, order_id, kind, on_hand_delta, reserved_delta, note)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::int[], $7::text[])
"""

ROW_FOR_UPDATE = """
SELECT s.on_hand, s.reserved, s.low_alerted FROM stock s
WHERE s.product_id = $1 AND s.variant_id = $2 FOR UPDATE
"""
PRODUCT = "SELECT seller_id, deleted_at FROM products WHERE product_id = $1"
SELLERS = "SELECT product_id, seller_id FROM products WHERE product_id = ANY($1::uuid[])"
INSERT_ROW = """
INSERT INTO stock (product_id, variant_id, on_hand, low_stock_threshold, low_alerted)
VALUES ($1, $2, $3::int, $4::int, $3::int <= $4::int)
ON CONFLICT DO NOTHING
RETURNING on_hand - reserved AS available, low_alerted AS crossed
"""
SET_ROW = """
UPDATE stock SET on_hand = $3, low_stock_threshold = $4, low_alerted = $3 - reserved <= $4, updated_at = now()
WHERE product_id = $1 AND variant_id = $2
RETURNING on_hand - reserved AS available, low_alerted AND NOT $5 AS crossed
"""

# A product is available while any of its rows (its own, its variants') has a unit on hand that no
# reservation holds. Its availability can only cross zero where one of its rows does, so only those
# products are looked at, under a lock on their `availability` row: two writers of one product (two of
# its variants) take turns, and the second one sums the rows as the first one left them.
LOCK_AVAILABILITY = """
INSERT INTO availability (product_id)
SELECT id FROM unnest($1::uuid[]) AS u(id) ORDER BY id
ON CONFLICT (product_id) DO UPDATE SET product_id = excluded.product_id
"""
# Run after LOCK_AVAILABILITY, in a statement of its own so that it sees what the lock waited for.
AVAILABILITY_FLIPS = """
WITH now AS (
    SELECT product_id, sum(on_hand - reserved) > 0 AS available
    FROM stock WHERE product_id = ANY($1::uuid[]) GROUP BY product_id
)
UPDATE availability a SET available = now.available, changed_at = clock_timestamp()
FROM now
WHERE a.product_id = now.product_id AND a.available IS DISTINCT FROM now.available
RETURNING a.product_id, a.available, a.changed_at
"""

UPSERT_PRODUCT = """
INSERT INTO products (product_id, seller_id) VALUES ($1, $2)
ON CONFLICT (product_id) DO UPDATE SET seller_id = excluded.seller_id, deleted_at = NULL, updated_at = now()
"""
INSERT_PRODUCT_ROW = "INSERT INTO stock (product_id, on_hand) VALUES ($1, 0) ON CONFLICT DO NOTHING"
DELETE_PRODUCT = """
INSERT INTO products (product_id, seller_id, deleted_at) VALUES ($1, $2, now())
ON CONFLICT (product_id) DO UPDATE SET deleted_at = coalesce(products.deleted_at, now()), updated_at = now()
"""
