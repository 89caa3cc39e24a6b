"""svc_order's SQL, as constants (asyncpg prepares and caches each once per connection)."""

from __future__ import annotations

import uuid

from kit.bus import RELAY_WOKEN, outbox_insert

# The cart's "no variant" (cart_items.variant_id is part of the primary key, so it cannot be NULL).
NO_VARIANT = uuid.UUID(int=0)

# -- the catalog's projection (svc_order/projection.py) ------------------------------------------------------

# A projected product's columns, as every statement that reads them names them (`p`: catalog_products).
PRODUCT_COLUMNS = """p.version, p.for_sale, p.name, p.price, p.seller_id, p.category_id, p.image,
       p.variants::text AS variants"""
PRODUCTS = (
    f"SELECT p.product_id, {PRODUCT_COLUMNS} FROM catalog_products p WHERE p.product_id = ANY($1::uuid[])"
)
# A row replaces only an older version of its product. Written in the order of the ids, so two writers of
# the same products lock them in the same order.
KEEP_PRODUCTS = """
INSERT INTO catalog_products AS c (product_id, version, for_sale, name, price, seller_id, category_id,
                                   image, variants)
SELECT u.id, u.version, u.for_sale, u.name, u.price, u.seller, u.category, u.image, u.variants::jsonb
FROM unnest($1::uuid[], $2::bigint[], $3::bool[], $4::text[], $5::numeric[], $6::uuid[], $7::uuid[],
            $8::text[], $9::text[])
     AS u(id, version, for_sale, name, price, seller, category, image, variants)
ORDER BY u.id
ON CONFLICT (product_id) DO UPDATE
    SET version = EXCLUDED.version, for_sale = EXCLUDED.for_sale, name = EXCLUDED.name,
        price = EXCLUDED.price, seller_id = EXCLUDED.seller_id, category_id = EXCLUDED.category_id,
        image = EXCLUDED.image, variants = EXCLUDED.variants, updated_at = now()
    WHERE c.version < EXCLUDED.version
"""
FORGET_PRODUCT = "DELETE FROM catalog_products WHERE product_id = $1"

# -- cart ------------------------------------------------------------------------------------------------
# Every cart change answers the whole cart in the same round trip: the statement's main query reads the
# lines as they were before it (a data-modifying CTE is invisible to it), followed by the changed lines
# (quantity 0 = removed), and svc_order.cart merges the two.

_LINES = (
    "SELECT product_id, variant_id, quantity, added_at, false AS changed FROM cart_items WHERE user_id = $1"
)
_AND_CHANGED = " UNION ALL SELECT product_id, variant_id, quantity, added_at, true FROM changed"

# The lines with their projected products (NULLs: not projected yet), for a cart view.
CART = f"""
SELECT c.product_id, c.variant_id, c.quantity, c.added_at, false AS changed, {PRODUCT_COLUMNS}
FROM cart_items c LEFT JOIN catalog_products p ON p.product_id = c.product_id
WHERE c.user_id = $1
"""
# A cart add in one round trip: $2 product, $3 variant (NO_VARIANT for none), $4 quantity to add, $5 most
# lines, $6 most per line. The first row is the product (`target`; its columns NULL when the projection
# does not know it: nothing is added then, and svc_order.cart asks the catalog and runs this again), then
# the lines as the other changes answer them, each with its projected product. Added only when the
# product is for sale with such a variant (the checks svc_order.cart makes to say why not); a new line
# only while the cart has fewer than $5; an existing one only while it stays within $6.
ADD_ITEM = f"""
WITH target AS (
    SELECT p.* FROM (VALUES (true)) AS asked LEFT JOIN catalog_products p ON p.product_id = $2
), changed AS (
    INSERT INTO cart_items AS c (user_id, product_id, variant_id, quantity)
    SELECT $1::uuid, $2::uuid, $3::uuid, $4::int FROM target p
    WHERE p.for_sale
      AND ($3 = '{NO_VARIANT}'::uuid OR p.variants @> jsonb_build_array(jsonb_build_object('id', $3::text)))
      AND (EXISTS (SELECT 1 FROM cart_items WHERE user_id = $1 AND product_id = $2 AND variant_id = $3)
           OR (SELECT count(*) FROM cart_items WHERE user_id = $1) < $5)
    ON CONFLICT (user_id, product_id, variant_id) DO UPDATE
        SET quantity = c.quantity + EXCLUDED.quantity, updated_at = now()
        WHERE c.quantity + EXCLUDED.quantity <= $6
    RETURNING product_id, variant_id, quantity, added_at
), lines AS ({_LINES}{_AND_CHANGED})
SELECT true AS target, $2::uuid AS product_id, NULL::uuid AS variant_id, 0 AS quantity,
       NULL::timestamptz AS added_at, false AS changed, {PRODUCT_COLUMNS}
FROM target p
UNION ALL
SELECT false, l.product_id, l.variant_id, l.quantity, l.added_at, l.changed, {PRODUCT_COLUMNS}
FROM lines l LEFT JOIN catalog_products p ON p.product_id = l.product_id
"""
# $2 product, $3 variant or NULL for "the product's only line", $4 new quantity (1..99).
SET_QUANTITY = f"""
WITH target AS (
    SELECT variant_id FROM cart_items
    WHERE user_id = $1 AND product_id = $2 AND variant_id = coalesce($3, variant_id)
), changed AS (
    UPDATE cart_items c SET quantity = $4, updated_at = now()
    FROM target t
    WHERE c.user_id = $1 AND c.product_id = $2 AND c.variant_id = t.variant_id
      AND (SELECT count(*) FROM target) = 1
    RETURNING c.product_id, c.variant_id, c.quantity, c.added_at
)
{_LINES}{_AND_CHANGED}
"""
# $2 product, $3 variant or NULL for every line of the product.
REMOVE_ITEM = f"""
WITH changed AS (
    DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2 AND variant_id = coalesce($3, variant_id)
    RETURNING product_id, variant_id, 0 AS quantity, added_at
)
{_LINES}{_AND_CHANGED}
"""
CLEAR_CART = "DELETE FROM cart_items WHERE user_id = $1"

# -- checkout ----------------------------------------------------------------------------------------------

# The next order number, e.g. ORD-20261205-000123 (the day in the shop's time zone). Taken as the cart is
# read for a checkout (an uncorrelated sub-select: once per statement, and only when the cart has lines),
# so that the order.created event, written by the order's own statement, can carry it: a checkout refused
# after that (out of stock, a code refused) leaves a gap in the numbers, as a rolled-back one always did.
ORDER_NUMBER = """'ORD-' || to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMMDD')
    || '-' || lpad(n, greatest(6, length(n)), '0')
    FROM (SELECT nextval('order_number_seq')::text AS n) AS seq"""
# Locked for the checkout's transaction: a second checkout of the same cart waits, then finds it emptied.
# Each line comes with its projected product (NULLs: not projected yet).
CART_FOR_CHECKOUT = f"""
SELECT c.product_id, c.variant_id, c.quantity, {PRODUCT_COLUMNS},
       (SELECT {ORDER_NUMBER}) AS order_number, now() AS began
FROM cart_items c LEFT JOIN catalog_products p ON p.product_id = c.product_id
WHERE c.user_id = $1
ORDER BY c.added_at, c.product_id, c.variant_id
FOR UPDATE OF c
"""
# The order, its items, its first history entry, its order.created event (kit.bus.outbox_insert), the cart
# lines it took (only those still as they were: a line changed meanwhile stays in the cart) and its
# checkout intent closed, in one statement.
# `intent_closed` false: the recovery job compensated the intent (the DELETE waits while it holds the
# row, then finds it no longer open), and the caller rolls all of it back.
# $1 id, $2 user, $3 method, $4 subtotal, $5 discount, $6 shipping, $7 total, $8 units, $9 discount code,
# $10 address (JSON), $11 number, $12 expiry; per line: $13 product, $14 variant, $15 name,
# $16 variant name, $17 image, $18 seller, $19 unit price, $20 quantity, $21 cart variant; $22-$26 event.
CREATE_ORDER = f"""
WITH closed AS (
    DELETE FROM checkout_intents WHERE order_id = $1 AND state = 'open' RETURNING true
), new_order AS (
    INSERT INTO orders (id, user_id, order_number, status, payment_status, payment_method, subtotal,
                        discount_amount, shipping_fee, total_amount, item_count, discount_code,
                        shipping_address, expires_at)
    VALUES ($1::uuid, $2::uuid, $11::text, 'PENDING', 'PENDING', $3::text, $4::numeric, $5::numeric,
            $6::numeric, $7::numeric, $8::int, $9::text, $10::jsonb, $12::timestamptz)
), items AS (
    INSERT INTO order_items (order_id, line_no, product_id, variant_id, product_name, variant_name,
                             product_image, seller_id, unit_price, quantity)
    SELECT $1::uuid, l.n, l.p, l.v, l.name, l.vname, l.image, l.seller, l.price, l.q
    FROM unnest($13::uuid[], $14::uuid[], $15::text[], $16::text[], $17::text[], $18::uuid[],
                $19::numeric[], $20::int[])
         WITH ORDINALITY AS l(p, v, name, vname, image, seller, price, q, n)
), logged AS (
    INSERT INTO order_history (order_id, status, note, actor) VALUES ($1, 'PENDING', 'order placed', $2)
), emptied AS (
    DELETE FROM cart_items c USING unnest($13::uuid[], $21::uuid[], $20::int[]) AS o(p, v, q)
    WHERE c.user_id = $2 AND c.product_id = o.p AND c.variant_id = o.v AND c.quantity = o.q
), announced AS (
    {outbox_insert(22)}
)
SELECT EXISTS (SELECT FROM closed) AS intent_closed FROM {RELAY_WOKEN}
"""

# -- checkout intents (svc_order/intents.py) -----------------------------------------------------------------

# Committed without waiting for the WAL flush (`synchronous_commit` off for this statement's own
# transaction: set_config(..., true) lasts until its commit): visible to the recovery job at once, lost
# only if PostgreSQL itself crashes within a fraction of a second, and then only for a checkout whose
# order never committed (the order's commit flushes the WAL up to it), whose holds then expire instead.
RECORD_INTENT = """
INSERT INTO checkout_intents (order_id, user_id, lines, discount_code)
SELECT $1, $2, $3::jsonb, $4 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait
"""
# Held by a compensation until it has released and recorded: the recovery job skips the row meanwhile.
LOCK_OPEN_INTENT = "SELECT true FROM checkout_intents WHERE order_id = $1 AND state = 'open' FOR UPDATE"
# Intents still open $1 seconds after they were recorded, oldest first, at most $2; rows a live
# checkout or another recovery holds are skipped.
OVERDUE_INTENTS = """
SELECT order_id, user_id, lines::text AS lines, discount_code FROM checkout_intents
WHERE state = 'open' AND created_at < now() - make_interval(secs => $1)
ORDER BY created_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""
INTENTS_COMPENSATED = """
UPDATE checkout_intents SET state = 'compensated', compensated_at = now()
WHERE order_id = ANY($1::uuid[]) AND state = 'open'
"""
PRUNE_INTENTS = """
DELETE FROM checkout_intents WHERE state = 'compensated' AND created_at < now() - make_interval(hours => $1)
"""

# -- idempotency -------------------------------------------------------------------------------------------

# Waits while another transaction holds the same (user, key): its outcome decides whether we claim it.
CLAIM_KEY = """
INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING true
"""
CLAIMED_KEY = "SELECT fingerprint, status, response FROM idempotency_keys WHERE user_id = $1 AND key = $2"
REMEMBER_ANSWER = "UPDATE idempotency_keys SET status = $3, response = $4 WHERE user_id = $1 AND key = $2"
FORGET_KEYS = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)"

# -- status workflow ---------------------------------------------------------------------------------------

# Moves the orders among $1 whose status is one of $3 to $2, with a history entry each.
# $4 actor (NULL: the system), $5 payment status (NULL: unchanged), $6 cancel reason or NULL, $7 note.
TRANSITION = """
WITH moved AS (
    UPDATE orders SET status = $2, updated_at = now(),
                      payment_status = CASE
                          -- a cancellation never hides that an order was paid (it is refunded instead)
                          WHEN $5::text IS NULL OR ($5 = 'CANCELLED' AND payment_status <> 'PENDING')
                          THEN payment_status ELSE $5 END,
                      cancel_reason = coalesce($6, cancel_reason)
    WHERE id = ANY($1::uuid[]) AND status = ANY($3::text[])
    RETURNING id, user_id, discount_code, order_number, total_amount
), logged AS (
    INSERT INTO order_history (order_id, status, note, actor) SELECT id, $2, $7, $4 FROM moved
)
SELECT id, user_id, discount_code, order_number, total_amount FROM moved
"""
STATUS_OF = "SELECT status FROM orders WHERE id = $1"
OWNER_OF = "SELECT user_id FROM orders WHERE id = $1"
# Held until the payment handler's transaction ends, so the sweeper cannot cancel it meanwhile.
PAYMENT_OF = "SELECT status, payment_id FROM orders WHERE id = $1 FOR UPDATE"
RECORD_PAYMENT = """
UPDATE orders SET payment_id = $2, transaction_id = $3, paid_at = $4, updated_at = now() WHERE id = $1
"""
NOTE = "INSERT INTO order_history (order_id, status, note) SELECT id, status, $2 FROM orders WHERE id = $1"
STOCK_LINES = """
SELECT order_id, product_id, variant_id, quantity FROM order_items WHERE order_id = ANY($1::uuid[])
ORDER BY order_id, line_no
"""
DUE_FOR_CANCELLATION = """
SELECT id FROM orders WHERE status = 'PENDING' AND expires_at <= now()
ORDER BY expires_at LIMIT $1
FOR UPDATE SKIP LOCKED
"""

# -- views -------------------------------------------------------------------------------------------------

_ITEM_JSON = """json_build_object(
    'productId', i.product_id, 'variantId', i.variant_id, 'productName', i.product_name,
    'variantName', i.variant_name, 'productImage', i.product_image, 'sellerId', i.seller_id,
    'unitPrice', i.unit_price, 'quantity', i.quantity, 'totalPrice', i.total_price) ORDER BY i.line_no"""

# $2 NULL: any owner (an Admin asking).
ORDER = f"""
SELECT o.id, o.order_number, o.user_id, o.status, o.payment_status, o.payment_method, o.currency,
       o.subtotal::float8 AS subtotal, o.discount_amount::float8 AS discount_amount, o.discount_code,
       o.shipping_fee::float8 AS shipping_fee, o.total_amount::float8 AS total_amount, o.item_count,
       o.shipping_address::text AS shipping_address, o.expires_at, o.paid_at, o.transaction_id,
       o.cancel_reason, o.created_at, o.updated_at,
       (SELECT json_agg({_ITEM_JSON}) FROM order_items i WHERE i.order_id = o.id)::text AS items,
       (SELECT json_agg(json_build_object('status', h.status, 'note', h.note, 'at', h.created_at)
                        ORDER BY h.id)
        FROM order_history h WHERE h.order_id = o.id)::text AS history
FROM orders o
WHERE o.id = $1 AND ($2::uuid IS NULL OR o.user_id = $2)
"""

ORDER_SORTS = {"createdAt": "created_at", "totalAmount": "total_amount"}
# `?search=` ($3, an ILIKE pattern or NULL): the order number, or the name of a product in the order.
_SEARCH = """($3::text IS NULL OR o.order_number ILIKE $3
       OR EXISTS (SELECT 1 FROM order_items m WHERE m.order_id = o.id AND m.product_name ILIKE $3))"""
_OF_USER = f"FROM orders o WHERE o.user_id = $1 AND ($2::text IS NULL OR o.status = $2) AND {_SEARCH}"
_ORDERS_OF_USER = f"""
SELECT o.id, o.order_number, o.status, o.payment_status, o.payment_method,
       o.total_amount::float8 AS total_amount, o.item_count, o.created_at, o.updated_at,
       count(*) OVER () AS total
{_OF_USER}
ORDER BY o.{{column}} {{direction}}, o.id {{direction}}
LIMIT $4 OFFSET $5
"""
ORDERS_OF_USER = {
    (sort, direction): _ORDERS_OF_USER.format(column=column, direction=direction)
    for sort, column in ORDER_SORTS.items()
    for direction in ("ASC", "DESC")
}
COUNT_ORDERS_OF_USER = f"SELECT count(*) {_OF_USER}"

ORDERS_OF_SELLER = f"""
SELECT o.id, o.order_number, o.status, o.shipping_address::text AS shipping_address, o.created_at,
       json_agg({_ITEM_JSON})::text AS items, sum(i.total_price)::float8 AS seller_total,
       count(*) OVER () AS total
FROM orders o JOIN order_items i ON i.order_id = o.id
WHERE i.seller_id = $1 AND ($2::text IS NULL OR o.status = $2) AND {_SEARCH}
GROUP BY o.id
ORDER BY o.created_at DESC, o.id DESC
LIMIT $4 OFFSET $5
"""
COUNT_ORDERS_OF_SELLER = f"""
SELECT count(DISTINCT o.id) FROM orders o JOIN order_items i ON i.order_id = o.id
WHERE i.seller_id = $1 AND ($2::text IS NULL OR o.status = $2) AND {_SEARCH}
"""
