"""Checkout benchmark against a running stack, through the edge: checkouts/s and p50/p99.

    .venv/bin/python perf/checkout_bench.py                       # fixed 300/s, then saturation
    .venv/bin/python perf/checkout_bench.py --rate 150 --duration 20 --concurrency 32
    .venv/bin/python perf/checkout_bench.py --quick               # a few seconds of each, to see it runs

The stack must run with the demo catalog seeded (`make run` does) and the edge's limits raised, e.g.
`RATE_LIMIT_USER_PER_MINUTE=100000000 RATE_LIMIT_IP_PER_HOUR=1000000000 make run`.

1. Set-up (not measured): every demo product written to svc_order's projection of the catalog, as in a
   shop running for a while (`fill_projection`; `--cold` leaves it as it is), and `--users` new
   accounts registered, verified (their mail read from the mail sink) and logged in straight at
   svc_auth (its login is argon2-bound and rate-limited at the edge).
2. Every iteration is what a buyer does: add 1..`--lines` random demo products to the cart
   (`POST /api/cart/items` each), then `POST /api/orders/checkout`. A user runs one iteration at a
   time (a cart is per user); checkout latency is measured alone, cart adds apart.
3. Fixed rate: iterations start on a schedule (`--rate`/s, open loop, each on an idle user; one that
   finds no idle user is counted as missed); then saturation: `--concurrency` buyers loop as fast as
   they can. Each phase reports checkouts/s, p50/p99/max and the answers by status.
4. Cart views: `GET /api/cart` at `--cart-rate`/s (open loop), round the buyers.
5. The CPU time each part of the stack spent per checkout during each phase (from /proc: the edge,
   each service with its granian workers, PostgreSQL, Redis, RabbitMQ and this client), which shows
   what a saturated 2-core machine is spending its time on.

The load generator speaks HTTP/1.1 on keep-alive sockets (svc_order's own small client), so it costs the
machine little next to the stack it measures; its own CPU is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit import settings  # noqa: E402
from kit.httpclient import Client  # noqa: E402
from perf.load.cpu import cpu_by_part, spent_during  # noqa: E402
from shop.map import SERVICES, demo_product_id  # noqa: E402
from svc_order import downstream, projection  # noqa: E402

PASSWORD = "Bench-Pass-123!"
ADDRESS = {
    "fullName": "Bench Buyer",
    "phone": "+84900000000",
    "line1": "1 Bench St",
    "city": "HCMC",
    "country": "VN",
}


class Edge:
    """Requests to the edge on keep-alive connections; a failed exchange is status 599."""

    def __init__(self, url: str) -> None:
        self.port = urlsplit(url).port or 80
        # A shopper's requests carry no trace context: the edge starts each trace (and samples it).
        self.client = Client(url, size=4096, timeout=60, propagate=False)

    async def request(self, method: str, path: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await self.client.request(method, path, headers, body)
        except (OSError, TimeoutError):
            return 599, b""


# -- set-up: buyers with tokens ---------------------------------------------------------------------------


async def _account(auth: httpx.AsyncClient, mail: httpx.AsyncClient, gate: asyncio.Semaphore) -> str:
    """A new verified account's access token."""
    email = f"bench{uuid.uuid4().hex[:12]}@shop.test"
    async with gate:
        registered = await auth.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "fullName": "Bench Buyer"}
        )
        registered.raise_for_status()
        token = None
        for _ in range(200):
            messages = (await mail.get("/api/messages", params={"to": email})).json()
            if messages and (found := re.search(r"[?&]token=([A-Za-z0-9_\-]+)", messages[0]["body"])):
                token = found.group(1)
                break
            await asyncio.sleep(0.05)
        assert token, f"no verification mail for {email}"
        (await auth.post("/api/auth/verify-email", json={"email": email, "token": token})).raise_for_status()
        login = await auth.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
    return str(login.json()["accessToken"])


async def accounts(count: int, auth_url: str, mail_url: str) -> list[str]:
    """`count` new verified accounts' access tokens (also used by perf/locustfile_checkout.py)."""
    async with (
        httpx.AsyncClient(base_url=auth_url, timeout=60) as auth,
        httpx.AsyncClient(base_url=mail_url, timeout=10) as mail,
    ):
        gate = asyncio.Semaphore(4)  # argon2 is the bottleneck: more at once only queues
        return list(await asyncio.gather(*(_account(auth, mail, gate) for _ in range(count))))


# -- the work -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase measured: latencies by kind of request, answers by kind and status."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    missed: int = 0

    async def timed(
        self, kind: str, edge: Edge, method: str, path: str, who: bytes, body: bytes = b""
    ) -> int:
        began = time.perf_counter()
        status, _ = await edge.request(method, path, who, body)
        self.latencies[kind].append(time.perf_counter() - began)
        self.statuses[f"{kind} {status}"] += 1
        return status


@dataclass
class Shop:
    edge: Edge
    products: int
    lines: int
    checkout_body: bytes = msgspec.json.encode({"shippingAddress": ADDRESS, "paymentMethod": "vnpay"})

    async def add_to_cart(self, who: bytes, tally: Tally) -> None:
        product = demo_product_id(random.randint(1, self.products))
        body = b'{"productId":"%s","quantity":1}' % str(product).encode()
        await tally.timed("cart add", self.edge, "POST", "/api/cart/items", who, body)

    async def iteration(self, who: bytes, tally: Tally) -> None:
        """A buyer fills the cart and checks out; latencies and statuses go into `tally`."""
        for _ in range(random.randint(1, self.lines)):
            await self.add_to_cart(who, tally)
        status = await tally.timed(
            "checkout", self.edge, "POST", "/api/orders/checkout", who, self.checkout_body
        )
        if status == 422:
            # Out of stock, usually: empty the cart so this buyer's next iteration starts clean.
            await self.edge.request("DELETE", "/api/cart", who)


async def fixed_rate(shop: Shop, users: list[bytes], rate: float, duration: float) -> Tally:
    tally, idle, running = Tally(), list(users), set[asyncio.Task[None]]()
    random.shuffle(idle)

    async def one(who: bytes) -> None:
        try:
            await shop.iteration(who, tally)
        finally:
            idle.append(who)

    start = time.perf_counter()
    for i in range(int(rate * duration)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not idle:
            tally.missed += 1
            continue
        task = asyncio.create_task(one(idle.pop()))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    return tally


async def cart_views(shop: Shop, users: list[bytes], rate: float, duration: float) -> Tally:
    """`GET /api/cart` at a fixed rate, round the buyers (each cart holds a line or two first)."""
    filled = Tally()
    await asyncio.gather(*(shop.add_to_cart(who, filled) for who in users))
    tally, running = Tally(), set[asyncio.Task[int]]()
    start = time.perf_counter()
    for i in range(int(rate * duration)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(
            tally.timed("cart view", shop.edge, "GET", "/api/cart", users[i % len(users)])
        )
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    return tally


async def saturation(shop: Shop, users: list[bytes], concurrency: int, duration: float) -> Tally:
    tally = Tally()
    end = time.perf_counter() + duration

    async def buyer(who: bytes) -> None:
        while time.perf_counter() < end:
            await shop.iteration(who, tally)

    await asyncio.gather(*(buyer(who) for who in users[:concurrency]))
    return tally


# -- CPU by part of the stack: perf/load/cpu.py -------------------------------------------------------


async def measured(
    run: Callable[[], Awaitable[Tally]], edge_port: int
) -> tuple[Tally, float, dict[str, float]]:
    me = {os.getpid(): "bench client"}
    before, began = (time.time(), cpu_by_part(edge_port, me)), time.perf_counter()
    tally = await run()
    elapsed = time.perf_counter() - began
    after = (time.time(), cpu_by_part(edge_port, me))
    return tally, elapsed, spent_during([before, after], before[0], after[0])


# -- report ------------------------------------------------------------------------------------------------


def _ms(samples: list[float], q: float) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


def report(name: str, tally: Tally, elapsed: float, cpu: dict[str, float]) -> None:
    print(f"\n## {name}: {elapsed:.1f} s, load average {os.getloadavg()[0]:.2f}")
    print("| request | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind, samples in tally.latencies.items():
        figures = " | ".join(_ms(samples, q) for q in (0.5, 0.99, 1.0))
        print(f"| {kind} | {len(samples) / elapsed:.0f} | {figures} |")
    print(f"\nanswers: {dict(sorted(tally.statuses.items()))}")
    if tally.missed:
        print(f"iterations missed (no idle buyer at their start time): {tally.missed}")
    # CPU per created order in the checkout phases, per thousand requests in the cart phase.
    unit, count = (
        ("created order", tally.statuses["checkout 201"])
        if "checkout" in tally.latencies
        else ("1000 cart views", len(tally.latencies["cart view"]) / 1000)
    )
    busy = {k: v for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    total = sum(v for k, v in busy.items() if k != "other")
    print(
        f"\nCPU: {total / elapsed:.2f} cores busy with this stack, {busy.get('other', 0) / elapsed:.2f} with"
        f" other work; ms of CPU per {unit} by part:"
    )
    print(" | ".join(f"{k} {v * 1000 / max(count, 0.001):.2f}" for k, v in busy.items()))


async def analyze(env: Mapping[str, str] | None = None) -> None:
    """ANALYZE every database of the stack (`env`: its variables; default this process's), as
    autovacuum would have by the time a shop has sold this much. This machine's PostgreSQL runs
    without autovacuum (conf.d/90-ci.conf): there, svc_order's projection, which fills from empty
    under the very load measured, kept the sequential-scan plans its statements were first prepared
    with, and order_db cost 1.7 -> 5.9 ms per order within four runs (perf/README.md "Speed")."""
    for spec in SERVICES.values():
        if spec.database:
            conn = await asyncpg.connect(settings.database_url(spec.database, env, direct=True))
            try:
                await conn.execute("ANALYZE")
            finally:
                await conn.close()


async def fill_projection(env: Mapping[str, str] | None, product_url: str, products: int) -> bool:
    """Write demo products 1..`products` to svc_order's projection of the catalog (`env`: the stack's
    variables; default this process's), as in a shop running for a while (each product projected from
    its events or its first sale); False while order_db has no projection (a tree without it).

    The demo seed writes the catalog without events, so on a fresh stack every product's first cart add
    reads the catalog: without this, the first runs measure that warm-up rather than the checkout."""
    conn = await asyncpg.connect(settings.database_url("order_db", env, direct=True))
    try:
        if not await conn.fetchval("SELECT to_regclass('catalog_products') IS NOT NULL"):
            return False
        catalog = downstream.Catalog(product_url, timeout=30)
        try:
            ids = [demo_product_id(number) for number in range(1, products + 1)]
            for start_at in range(0, len(ids), downstream.BATCH):
                sold = await catalog.for_sale(ids[start_at : start_at + downstream.BATCH])
                await projection.keep(conn, [(product, True) for product in sold])
        finally:
            await catalog.close()
        return True
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edge", default=os.environ.get("EDGE_URL", settings.service_url("edge")))
    parser.add_argument("--auth", default=settings.service_url("auth"))
    parser.add_argument("--mail", default=settings.service_url("mailsink"))
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--lines", type=int, default=2, help="at most this many products per order")
    parser.add_argument("--products", type=int, default=10_000, help="demo products to pick from")
    parser.add_argument("--cart-rate", type=float, default=2000.0, help="cart views/s (0: skip)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--cold", action="store_true", help="leave svc_order's projection as it is (fill_projection)"
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.duration, args.rate, args.concurrency, args.cart_rate = 40, 3.0, 50.0, 16, 200.0
    if not args.cold:
        await fill_projection(None, settings.service_url("product"), args.products)
    tokens = await accounts(args.users, args.auth, args.mail)
    users = [b"authorization: Bearer %s\r\ncontent-type: application/json\r\n" % t.encode() for t in tokens]
    shop = Shop(Edge(args.edge), args.products, args.lines)
    await saturation(shop, users, min(8, len(users)), 2.0)  # warm up: connections, prices, statements
    await analyze()
    print(f"# Checkout through {args.edge}: {len(users)} buyers, 1..{args.lines} lines per order")
    port = shop.edge.port
    fixed = await measured(lambda: fixed_rate(shop, users, args.rate, args.duration), port)
    report(f"fixed rate {args.rate:.0f} checkouts/s", *fixed)
    saturated = await measured(lambda: saturation(shop, users, args.concurrency, args.duration), port)
    report(f"saturation, {args.concurrency} buyers", *saturated)
    if args.cart_rate:
        views = await measured(lambda: cart_views(shop, users, args.cart_rate, args.duration), port)
        report(f"cart views at {args.cart_rate:.0f}/s", *views)


if __name__ == "__main__":
    asyncio.run(main())
