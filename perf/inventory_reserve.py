"""Reservations per second on one hot product: the Lua path against a plain PostgreSQL row lock.

    .venv/bin/python perf/inventory_reserve.py [--reservations 20000] [--concurrency 256]

1. Lua path: svc_inventory's own `Inventory.reserve` (the calls waiting are batched: one Redis script
   call for the batch, one PostgreSQL transaction), called concurrently in-process; then the time
   until the outbox relay (in the same process, as in the service) has published every event too.
   The row-lock path starts only after that, so the relay's backlog does not slow it down.
   Then the relay alone: the same events marked unsent again and published once more (CPU per event).
2. Row-lock path: what the seed did, made correct: one transaction per reservation that locks the
   product's stock row (`UPDATE ... WHERE on_hand - reserved >= q`) and inserts the reservation and
   its line. Same tables, same database.
3. ReserveStock over gRPC against `python -m svc_inventory` in its own process (granian + uvloop),
   distinct orders on one hot product: calls/s, p50 and p99 latency.

CPU is given too, as it is steadier than rates on a busy machine: the Lua path's per reservation in
this process (callers, batcher, relay, until the events were published), and the gRPC server's
(its processes) and client's per call.

Uses the database `inventory_perf` and Redis db 13 unless INVENTORY_DATABASE_URL / REDIS_URL say
otherwise; both are wiped first. Needs PostgreSQL, Redis and RabbitMQ as `make run` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("INVENTORY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/inventory_perf")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("INVENTORY_PORT", "47006")
os.environ.setdefault("INVENTORY_GRPC_PORT", "47106")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import asyncpg  # noqa: E402
import grpc  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402

from kit import db, settings  # noqa: E402
from kit.app import running  # noqa: E402
from kit.bus import RELAY_WOKEN  # noqa: E402
from kit.grpc import channel  # noqa: E402
from protos import inventory_pb2 as pb  # noqa: E402
from protos import inventory_pb2_grpc  # noqa: E402
from svc_inventory import engine, store  # noqa: E402
from svc_inventory.app import service  # noqa: E402
from svc_inventory.schemas import Line  # noqa: E402

ROW_LOCK = """
WITH held AS (
    UPDATE stock SET reserved = reserved + $3, updated_at = now()
    WHERE product_id = $2 AND variant_id = $4 AND on_hand - reserved >= $3
    RETURNING product_id
), reservation AS (
    INSERT INTO reservations (order_id, state, expires_at)
    SELECT $1, 'RESERVED', now() + interval '15 minutes' FROM held
    RETURNING order_id
)
INSERT INTO reservation_lines (order_id, product_id, variant_id, quantity)
SELECT order_id, $2, $4, $3 FROM reservation
"""


async def _stocked(pool: asyncpg.Pool, units: int) -> uuid.UUID:
    product = uuid.uuid4()
    await pool.execute("INSERT INTO stock (product_id, on_hand) VALUES ($1, $2)", product, units)
    return product


async def _timed(count: int, concurrency: int, call: object) -> tuple[float, list[float]]:
    """Run `call()` `count` times, `concurrency` at once; (calls/s, latencies in seconds)."""
    latencies: list[float] = []
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            began = time.perf_counter()
            await call()  # type: ignore[operator]
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - began), latencies


async def _relayed(pool: asyncpg.Pool, within: float = 600.0) -> None:
    """Wait until the outbox relay has published every event written so far (polled every 20 ms)."""
    for _ in range(int(within / 0.02)):
        if not await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"events still unpublished after {within} s")


@dataclass
class LuaVsRowLock:
    lua_rate: float
    relayed_rate: float
    lua_cpu_us: float
    relay_rate: float
    relay_cpu_us: float
    lock_rate: float


async def _relay_alone(pool: asyncpg.Pool) -> tuple[float, float]:
    """Every event of the outbox published again by the relay alone: (events/s, CPU µs per event)."""
    began, cpu = time.perf_counter(), time.process_time()
    events = await pool.fetchval(
        "WITH again AS (UPDATE outbox SET sent_at = NULL RETURNING 1) SELECT count(*) FROM again"
    )
    await pool.execute(f"SELECT FROM {RELAY_WOKEN}")
    await _relayed(pool)
    return events / (time.perf_counter() - began), (time.process_time() - cpu) / events * 1e6


@dataclass
class GrpcFigures:
    rate: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float
    client_cpu_us: float


def _cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU of `process` and its children (granian's worker) so far."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


async def lua_vs_row_lock(reservations: int, concurrency: int) -> LuaVsRowLock:
    config = settings.load("inventory", own=service.settings)
    assert config.database_url
    await db.drop_database(config.database_url)
    async with running(service, config) as deps:
        await deps.redis.flushdb()  # type: ignore[union-attr]
        inventory = engine.INVENTORY.of(deps)
        await inventory.sync()
        hot = await _stocked(deps.db, reservations * 2)

        async def lua() -> None:
            await inventory.reserve(uuid.uuid4(), [Line(hot, store.PRODUCT_LEVEL, 1)])

        began, cpu = time.perf_counter(), time.process_time()
        lua_rate, _ = await _timed(reservations, concurrency, lua)
        await _relayed(deps.db)
        relayed_rate = reservations / (time.perf_counter() - began)
        lua_cpu_us = (time.process_time() - cpu) / reservations * 1e6
        relay_rate, relay_cpu_us = await _relay_alone(deps.db)
        locked = await _stocked(deps.db, reservations * 2)

        async def row_lock() -> None:
            async with deps.db.acquire() as conn, conn.transaction():
                await conn.execute(ROW_LOCK, uuid.uuid4(), locked, 1, store.PRODUCT_LEVEL)

        lock_rate, _ = await _timed(max(reservations // 5, 1000), concurrency, row_lock)
        held = await deps.db.fetchval("SELECT reserved FROM stock WHERE product_id = $1", hot)
        assert held == reservations, (held, reservations)
    return LuaVsRowLock(lua_rate, relayed_rate, lua_cpu_us, relay_rate, relay_cpu_us, lock_rate)


async def grpc_calls(calls: int, concurrency: int) -> GrpcFigures:
    config = settings.load("inventory")
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "svc_inventory", cwd=ROOT)
    try:
        pool = await asyncpg.create_pool(config.database_url, min_size=1, max_size=2)
        assert pool is not None
        hot = await _stocked(pool, calls * 2)
        await pool.close()
        async with channel(f"127.0.0.1:{config.grpc_port}") as ch:
            await asyncio.wait_for(ch.channel_ready(), 30)
            stub = inventory_pb2_grpc.InventoryServiceStub(ch)  # type: ignore[no-untyped-call]
            line = pb.StockLine(product_id=str(hot), quantity=1)

            async def reserve() -> None:
                for attempt in range(50):
                    try:
                        await stub.ReserveStock(
                            pb.ReserveStockRequest(order_id=str(uuid.uuid4()), lines=[line]), timeout=10
                        )
                        return
                    except grpc.aio.AioRpcError as exc:  # the first calls may race the server's start
                        if exc.code() is not grpc.StatusCode.UNAVAILABLE or attempt == 49:
                            raise
                        await asyncio.sleep(0.1)

            await _timed(min(calls, 2000), concurrency, reserve)  # warm up
            serving = psutil.Process(server.pid)
            server_cpu, client_cpu = _cpu_seconds(serving), time.process_time()
            rate, latencies = await _timed(calls, concurrency, reserve)
            server_cpu, client_cpu = _cpu_seconds(serving) - server_cpu, time.process_time() - client_cpu
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
    cuts = statistics.quantiles(latencies, n=100)
    return GrpcFigures(
        rate, cuts[49] * 1000, cuts[98] * 1000, server_cpu / calls * 1e6, client_cpu / calls * 1e6
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reservations", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--grpc-calls", type=int, default=10_000)
    args = parser.parse_args()
    lua = await lua_vs_row_lock(args.reservations, args.concurrency)
    print(f"Lua path (Redis script + batched PostgreSQL record): {lua.lua_rate:10,.0f} reservations/s")
    print(f"  ... until the relay had published their events:    {lua.relayed_rate:10,.0f} reservations/s")
    print(f"  ... CPU of this process per reservation:           {lua.lua_cpu_us:10,.0f} µs")
    print(f"The relay alone (the same events published again):   {lua.relay_rate:10,.0f} events/s")
    print(f"  ... CPU of this process per event:                 {lua.relay_cpu_us:10,.0f} µs")
    print(f"Row-lock path (one locked transaction each):         {lua.lock_rate:10,.0f} reservations/s")
    print(
        f"Ratio: {lua.lua_rate / lua.lock_rate:.1f}x"
        f" (with the events published: {lua.relayed_rate / lua.lock_rate:.1f}x)"
    )
    g = await grpc_calls(args.grpc_calls, args.concurrency)
    print(
        f"ReserveStock over gRPC (server in its own process): {g.rate:,.0f} calls/s,"
        f" p50 {g.p50_ms:.1f} ms, p99 {g.p99_ms:.1f} ms;"
        f" CPU per call: server {g.server_cpu_us:.0f} µs, client {g.client_cpu_us:.0f} µs"
    )


if __name__ == "__main__":
    uvloop.run(main())
