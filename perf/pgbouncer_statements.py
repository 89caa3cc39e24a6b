"""What transaction pooling through PgBouncer 1.18 costs the shop's hot statements.

    SHOP_TEST_PORT_OFFSET=16000 .venv/bin/python perf/pgbouncer_statements.py [--rounds 5] [--seconds 3]

Debian's PgBouncer (1.18) keeps no prepared statement across transactions, so the services run
behind it with asyncpg's statement cache off (`DB_STATEMENT_CACHE_SIZE=0`): every statement is parsed
again (asyncpg's unnamed Parse/Describe, then Bind/Execute: two round trips) and planned again. Three
ways to the same databases, in alternating rounds of one run so the machine's other work falls on
all three alike:

- `direct, cached`: a pool straight to PostgreSQL with the statement cache (what `make run` does);
- `pgbouncer, no cache`: the same pool through PgBouncer with the cache off (`make run PGBOUNCER=1`,
  compose and Kubernetes);
- `direct, no cache`: straight to PostgreSQL with the cache off: the re-parsing alone, without the hop.

Workloads, each run by `--concurrency` tasks in a closed loop for `--seconds` per round:

- `detail`: svc_product's detail statement for one of 200 demo products;
- `list`: a list page of a category in one of the eight sort orders (each its own statement), page 1-3;
- `checkout`: svc_order's statements of one checkout: two cart lines added, the intent recorded,
  then in one transaction the Idempotency-Key claimed, the cart locked, the order created, the intent
  closed, `order.created` put in the outbox and the answer remembered (9 statements).

Per statement: the wall time (elapsed x concurrency / statements), the CPU of the PostgreSQL backends
(psutil on the children of the postmaster), PgBouncer's CPU and this client's. Everything runs on a
PostgreSQL of its own (ports 5436 and 6436 plus SHOP_TEST_PORT_OFFSET) with the demo catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import asyncpg  # noqa: E402
import psutil  # noqa: E402

from kit import bus, db, settings  # noqa: E402
from kit.app import Service, open_database  # noqa: E402
from shop.map import demo_product_id  # noqa: E402
from svc_order import store as order_store  # noqa: E402
from svc_order.app import service as order_service  # noqa: E402
from svc_order.events import OrderCreated, SoldLine  # noqa: E402
from svc_product import listing  # noqa: E402
from svc_product import seed as catalog_seed  # noqa: E402
from svc_product import store as product_store  # noqa: E402
from svc_product.query import SORTS, ListQuery  # noqa: E402
from tests.servers import OwnPostgres, own_pgbouncer, own_postgres  # noqa: E402

PORT_OFFSET = int(os.environ.get("SHOP_TEST_PORT_OFFSET", "10000"))
HOT = [demo_product_id(n) for n in range(1, 201)]
MODES = ("direct, cached", "pgbouncer, no cache", "direct, no cache")


@dataclass
class Catalog:
    categories: list[uuid.UUID]


async def detail(conn: asyncpg.Connection, catalog: Catalog) -> int:
    await conn.fetchrow(product_store.DETAIL, random.choice(HOT))
    return 1


async def list_page(conn: asyncpg.Connection, catalog: Catalog) -> int:
    query = ListQuery(
        category_id=random.choice(catalog.categories),
        sort_by=random.choice(SORTS),
        sort_order=random.choice(("asc", "desc")),
        page=random.randint(1, 3),
    )
    page_sql, _, args = listing.list_statement(query, None)
    await conn.fetch(page_sql, *args)
    return 1


async def checkout(conn: asyncpg.Connection, catalog: Catalog) -> int:
    user, order, key = uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex
    products = random.sample(HOT, 2)
    for product in products:
        await conn.fetch(order_store.ADD_ITEM, user, product, order_store.NO_VARIANT, 1, 50, 99)
    await conn.execute(order_store.RECORD_INTENT, order, user, "[]", None)
    async with conn.transaction():
        await conn.fetchval(order_store.CLAIM_KEY, user, key, key.encode())
        await conn.fetch(order_store.CART_FOR_CHECKOUT, user)
        created = await conn.fetchrow(
            order_store.CREATE_ORDER, order, user, "vnpay", 200_000, 0, 30_000, 230_000, 2, None, "{}", 900.0,
            products, [None, None], ["A", "B"], [None, None], [None, None], [user, user],
            [100_000, 100_000], [1, 1], [order_store.NO_VARIANT] * 2,
        )  # fmt: skip
        await conn.fetchval(order_store.COMPLETE_INTENT, order)
        lines = [SoldLine(product_id=p, variant_id=None, quantity=1, product_name="A", unit_price=1e5,
                          seller_id=user) for p in products]  # fmt: skip
        await bus.publish(
            conn,
            OrderCreated(
                order_id=order, order_number=created["order_number"], user_id=user, items=lines,
                subtotal=2e5, discount_amount=0, shipping_fee=3e4, total_amount=2.3e5,
                payment_method="vnpay", discount_code=None, expires_at=created["expires_at"],
            ),
        )  # fmt: skip
        await conn.execute(order_store.REMEMBER_ANSWER, user, key, 201, b"{}")
    return 9


Work = Callable[[asyncpg.Connection, Catalog], Awaitable[int]]
WORKLOADS: dict[str, tuple[str, Work]] = {
    "detail": ("product_db", detail),
    "list": ("product_db", list_page),
    "checkout": ("order_db", checkout),
}


@dataclass
class Sample:
    statements: int
    wall: float  # seconds x tasks
    postgres: float  # CPU seconds of the server's backends
    pgbouncer: float
    client: float

    def micros(self) -> tuple[float, float, float, float]:
        """Wall time, PostgreSQL's, PgBouncer's and the client's CPU in µs per statement."""
        wall, postgres, bouncer, client = (
            x / self.statements * 1e6 for x in (self.wall, self.postgres, self.pgbouncer, self.client)
        )
        return wall, postgres, bouncer, client


@dataclass
class Results:
    tasks: int
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, workload: str, mode: str, sample: Sample) -> None:
        self.samples.setdefault((workload, mode), []).append(sample)

    def table(self) -> str:
        lines = [
            "| workload | way | statements/s | wall µs/statement | PostgreSQL CPU µs/statement"
            " | PgBouncer CPU µs/statement | client CPU µs/statement |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for (workload, mode), samples in self.samples.items():
            rate = statistics.median(s.statements / (s.wall / self.tasks) for s in samples)
            columns = zip(*(s.micros() for s in samples), strict=True)
            micros = " | ".join(f"{statistics.median(column):.0f}" for column in columns)
            lines.append(f"| {workload} | {mode} | {rate:,.0f} | {micros} |")
        return "\n".join(lines)


def _cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += float(times.user + times.system)
    return total


def _backends(server: OwnPostgres) -> list[psutil.Process]:
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children: list[psutil.Process] = psutil.Process(postmaster).children()
    return children


async def _round(
    pool: asyncpg.Pool, work: Work, catalog: Catalog, seconds: float, tasks: int, server: OwnPostgres,
    bouncer: psutil.Process,
) -> Sample:  # fmt: skip
    statements = 0

    async def loop(until: float) -> None:
        nonlocal statements
        while time.perf_counter() < until:
            async with pool.acquire() as conn:
                statements += await work(conn, catalog)

    backends = _backends(server)
    before = (_cpu(backends), _cpu([bouncer]), time.process_time(), time.perf_counter())
    started = before[3]
    await asyncio.gather(*(loop(started + seconds) for _ in range(tasks)))
    backends += [p for p in _backends(server) if p not in backends]
    after = (_cpu(backends), _cpu([bouncer]), time.process_time(), time.perf_counter())
    return Sample(
        statements,
        (after[3] - before[3]) * tasks,
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
    )


async def _prepared(server: OwnPostgres, service: Service, database: str) -> None:
    env = {f"{service.name.upper()}_DATABASE_URL": f"{server.url}/{database}"}
    config = settings.load(service.name, env)
    pool = await open_database(service, config)
    try:
        if service.name == "product":
            await catalog_seed.seed(pool, config)
    finally:
        await pool.close()


async def measure(folder: Path, rounds: int, seconds: float, tasks: int) -> Results:
    async with (
        own_postgres(5436 + PORT_OFFSET) as server,
        own_pgbouncer(server.url, 6436 + PORT_OFFSET, folder) as bouncer,
    ):
        await _prepared(server, catalog_seed.service, "product_db")
        await _prepared(server, order_service, "order_db")
        ways = {MODES[0]: (server.url, 100), MODES[1]: (bouncer.url, 0), MODES[2]: (server.url, 0)}
        pools = {
            (mode, database): await db.create_pool(
                f"{base}/{database}", tasks, tasks, statement_cache_size=size
            )
            for mode, (base, size) in ways.items()
            for database in ("product_db", "order_db")
        }
        async with pools[MODES[0], "product_db"].acquire() as conn:
            catalog = Catalog([r["id"] for r in await conn.fetch("SELECT id FROM categories")])
        results = Results(tasks)
        process = psutil.Process(bouncer.pid)
        for number in range(rounds + 1):  # round 0 warms every statement and connection up
            order = MODES[number % 3 :] + MODES[: number % 3]
            for workload, (database, work) in WORKLOADS.items():
                for mode in order:
                    sample = await _round(
                        pools[mode, database], work, catalog, seconds, tasks, server, process
                    )
                    if number:
                        results.add(workload, mode, sample)
            print(f"round {number} of {rounds} done", file=sys.stderr)
        for pool in pools.values():
            await pool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shop-bouncer-") as folder:
        Path(folder).chmod(0o755)  # PgBouncer runs as postgres when started by root
        results = asyncio.run(measure(Path(folder), args.rounds, args.seconds, args.concurrency))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"{args.rounds} rounds x {args.seconds:g} s, {args.concurrency} tasks, load average {load}\n")
    print(results.table())


if __name__ == "__main__":
    main()
