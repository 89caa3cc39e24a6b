"""What a checkout intent adds to a checkout: its INSERT on the journal's pool (a commit of its own) and
its DELETE inside the order's transaction, measured against a scratch database (created and dropped).

    .venv/bin/python perf/intent_bench.py [--url postgresql://postgres@127.0.0.1:5432/intent_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import asyncpg

from kit import db
from svc_order import intents, store

ROUNDS = 2000


def _ms(samples: list[float], quantile: float) -> float:
    return sorted(samples)[int(len(samples) * quantile)] * 1000


async def _measure(pool: asyncpg.Pool, concurrency: int) -> str:
    recorded: list[float] = []
    completed: list[float] = []
    lines = f'[{{"productId": "{uuid.uuid4()}", "variantId": null, "quantity": 2}}]'

    async def checkout() -> None:
        order_id = uuid.uuid4()
        start = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.execute(store.RECORD_INTENT, order_id, uuid.uuid4(), lines, None)
        recorded.append(time.perf_counter() - start)
        async with pool.acquire() as conn, conn.transaction():
            start = time.perf_counter()
            assert await conn.fetchval(store.COMPLETE_INTENT, order_id)
            completed.append(time.perf_counter() - start)

    async def buyer() -> None:
        for _ in range(ROUNDS // concurrency):
            await checkout()

    began = time.perf_counter()
    await asyncio.gather(*(buyer() for _ in range(concurrency)))
    rate = len(recorded) / (time.perf_counter() - began)
    return (
        f"{concurrency} at once: {rate:,.0f} intents/s; record (INSERT + commit) p50 {_ms(recorded, 0.5):.2f}"
        f" ms p99 {_ms(recorded, 0.99):.2f} ms; complete (DELETE in the order's transaction) p50"
        f" {_ms(completed, 0.5):.2f} ms p99 {_ms(completed, 0.99):.2f} ms"
    )


async def main(url: str) -> None:
    await db.drop_database(url)
    await db.ensure_database(url)
    pool = await db.create_pool(url, intents.JOURNAL_CONNECTIONS, intents.JOURNAL_CONNECTIONS)
    try:
        await db.migrate(pool, Path(__file__).parents[1] / "svc_order" / "migrations")
        for concurrency in (1, intents.JOURNAL_CONNECTIONS, 2 * intents.JOURNAL_CONNECTIONS):
            print(await _measure(pool, concurrency))
    finally:
        await pool.close()
        await db.drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/intent_bench")
    asyncio.run(main(parser.parse_args().url))
