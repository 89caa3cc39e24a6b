"""The demo catalog (svc_product.demo) loaded with COPY in one transaction, once.

It writes no product.created events: svc_inventory seeds the stock of the same fixed demo ids itself
(and their seller, `seller@shop.local`), so 10,000 events would only replay what both seeds already know.
"""

from __future__ import annotations

import logging
import time

import asyncpg

from kit import cache
from kit.settings import Settings
from shop.map import demo_product_id, seed_user_id
from svc_product import caching, demo
from svc_product.app import service

__all__ = ["seed", "service"]

log = logging.getLogger(__name__)

# Seed accounts that can write reviews, with the names svc_auth's seed gives them.
SEED_AUTHORS = (
    ("admin@shop.local", "Shop Admin"),
    ("seller@shop.local", "Demo Seller"),
    ("user@shop.local", "Demo User"),
)
_LOCK = 0x5EED_0004
_SEARCH_INDEXES = ("products_document", "products_name_trigrams")


async def seed(pool: asyncpg.Pool, config: Settings) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Two seeds at once (two `make run`s) take turns; the second finds the catalog there.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)", demo_product_id(1)):
            return
        started = time.perf_counter()
        catalog = demo.build()
        # The search indexes take rows one at a time (no fastupdate); for a bulk load, collecting them in
        # the pending list and merging it once at the end is twice as fast.
        for index in _SEARCH_INDEXES:
            await conn.execute(f"ALTER INDEX {index} SET (fastupdate = on)")
        for table, columns in demo.COLUMNS.items():
            await conn.copy_records_to_table(table, records=getattr(catalog, table), columns=columns)
        for index in _SEARCH_INDEXES:
            await conn.execute("SELECT gin_clean_pending_list($1::regclass)", index)
            await conn.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        await conn.executemany(
            "INSERT INTO authors (user_id, name, changed_at) VALUES ($1, $2, '-infinity')"
            " ON CONFLICT (user_id) DO NOTHING",
            [(seed_user_id(email), name) for email, name in SEED_AUTHORS],
        )
        await conn.execute("ANALYZE products")
    # Processes already running hold lists (and their catalog index) of the catalog before the seed.
    redis = cache.connect(config.redis_url)
    try:
        await redis.incr(caching.LISTS)
    finally:
        await redis.aclose()
    log.info(
        "seeded the demo catalog",
        extra={"products": len(catalog.products), "seconds": round(time.perf_counter() - started, 2)},
    )
