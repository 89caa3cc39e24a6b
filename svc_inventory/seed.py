"""Stock for the demo catalog: products `demo_product_id(1..10000)` of the seed seller, 50-500 units each.

Deterministic (the quantity comes from the product number) and idempotent (rows that exist are left
alone, so a re-seed never undoes sales); loaded with COPY into a temporary table, then one INSERT.
"""

from __future__ import annotations

import logging

import asyncpg

from kit.settings import Settings
from shop.map import demo_product_id, seed_user_id
from svc_inventory.app import service

__all__ = ["DEMO_PRODUCTS", "demo_quantity", "seed", "service"]

log = logging.getLogger(__name__)

DEMO_PRODUCTS = 10_000


def demo_quantity(number: int) -> int:
    """Units on hand of demo product `number`: spread over 50..500 without randomness."""
    return 50 + (number * 7919) % 451


async def seed(pool: asyncpg.Pool, config: Settings) -> None:
    seller = seed_user_id("seller@shop.local")
    numbers = range(1, DEMO_PRODUCTS + 1)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE demo_stock (product_id uuid, on_hand int) ON COMMIT DROP")
        await conn.copy_records_to_table(
            "demo_stock", records=[(demo_product_id(n), demo_quantity(n)) for n in numbers]
        )
        await conn.execute(
            "INSERT INTO products (product_id, seller_id) SELECT product_id, $1 FROM demo_stock"
            " ON CONFLICT DO NOTHING",
            seller,
        )
        added = await conn.fetchval(
            "WITH added AS (INSERT INTO stock (product_id, on_hand)"
            " SELECT product_id, on_hand FROM demo_stock ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM added"
        )
    # A running service picks the new rows up by itself (a missing Redis key is loaded on first use).
    log.info("seeded demo stock", extra={"rows": added})
