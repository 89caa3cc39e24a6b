"""CPU of the catalog index in one process: answers, and updates after one-product writes.

    POSTGRES_URL=... .venv/bin/python perf/index_updates.py --database product_db_perf [--tree /tmp/before]

Reads the index of the catalog database named (the demo catalog: `make perf-search` or `make run`
seeds it), answers the 40 queries of perf/catalog.py's facets scenario 20 times and every prefix of
its search words as a suggestion 5 times, then (unless the tree has no updates: `--tree` of a version
before them) writes one product's price 1,000 times, each followed by the index's update, and prints
CPU per answer and per update (user + system of this process, asyncpg's side included). It writes to
that database: prices move by 1 VND per write.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

SHOWN = (1, 10, 100, 500, 1000)


async def measure(database: str, updates: int) -> None:
    from perf.catalog import FACETS, SEARCH_WORDS, TYPOS
    from svc_product import index, search
    from svc_product.query import parse

    pool = await asyncpg.create_pool(database, min_size=2, max_size=4)
    read: Any = index.read
    catalog = await (read(pool, 1) if "generation" in inspect.signature(read).parameters else read(pool))
    bound = [("maxPrice", "900000000")]
    words = SEARCH_WORDS + TYPOS
    queries = [
        parse([("search", w), ("facets", FACETS), *(bound if n % 2 else [])]) for n, w in enumerate(words)
    ]
    texts = [word[:n] for word in SEARCH_WORDS for n in range(2, len(word) + 1)]

    async def per_answer() -> tuple[float, float]:
        for query in queries:  # spellings looked up once
            await search.product_list(catalog, pool, query)
        began = time.process_time()
        for _ in range(20):
            for query in queries:
                await search.product_list(catalog, pool, query)
        listed = (time.process_time() - began) / (20 * len(queries)) * 1000
        began = time.process_time()
        for _ in range(5):
            for text in texts:
                await search.suggestions(catalog, pool, text)
        return listed, (time.process_time() - began) / (5 * len(texts)) * 1000

    listed, suggested = await per_answer()
    print(
        f"search + facets {listed:.3f} ms CPU per answer, suggestion {suggested:.3f} ms"
        f" ({catalog.size} products)"
    )
    if hasattr(index, "updated") and updates:
        products = list(catalog.slot_of)
        for n in range(1, updates + 1):
            await pool.execute(
                "UPDATE products SET price = price + 1 WHERE id = $1", products[n % len(products)]
            )
            wall, cpu = time.perf_counter(), time.process_time()
            catalog = await index.updated(pool, catalog)
            if catalog is None:
                sys.exit("the index would have to be read whole (more changed at once than an update takes)")
            if n in SHOWN:
                added = catalog.size - catalog.whole_size
                took, used = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
                print(f"  update {n} ({added} slots added): {took:.1f} ms, {used:.1f} ms CPU")
        listed, _ = await per_answer()
        print(f"  after {updates} updates: search + facets {listed:.3f} ms CPU per answer")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", required=True, help="the catalog's database, e.g. product_db_perf")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--updates", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))
    server = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    asyncio.run(measure(f"{server}/{args.database}", args.updates))


if __name__ == "__main__":
    main()
