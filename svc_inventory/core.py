"""The engine's core, shared by its sections: the pool, Redis and its scripts, and the stock lock.

engine.py says the rules every section keeps; store.py and lua.py hold the SQL and the scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

import asyncpg
from redis.asyncio import Redis

from kit import telemetry
from kit.bus import Event
from kit.errors import ServiceUnavailable
from svc_inventory import lua, store
from svc_inventory.schemas import Line
from svc_inventory.wire import AvailabilityChanged, LowStockAlert, wire_variant

RESERVED, COMMITTED, RELEASED, EXPIRED = "RESERVED", "COMMITTED", "RELEASED", "EXPIRED"
RETURNED = "RETURNED"
"""A sale (COMMITTED) whose order was cancelled after all: its units went back on hand. Final."""
HOLDING = {RESERVED, COMMITTED}

Move = tuple[uuid.UUID | None, Line, int, int]
"""(order, line, on-hand delta, reserved delta): one change of a stock row, as the stock log records it."""


def key_of(line: Line) -> str:
    return lua.avail_key(line.product_id, line.variant_id)


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def lines_of(row: asyncpg.Record) -> list[Line]:
    return [
        Line(p, v, q)
        for p, v, q in zip(row["product_ids"], row["variant_ids"], row["quantities"], strict=True)
    ]


def _deltas(
    lines: Iterable[tuple[uuid.UUID, uuid.UUID, int, int]],
) -> tuple[list[uuid.UUID], list[uuid.UUID], list[int], list[int]]:
    """Per-row sums of (on hand, reserved) deltas, sorted by row so writers lock in one order."""
    sums: dict[tuple[uuid.UUID, uuid.UUID], list[int]] = defaultdict(lambda: [0, 0])
    for product_id, variant_id, on_hand, reserved in lines:
        entry = sums[product_id, variant_id]
        entry[0] += on_hand
        entry[1] += reserved
    keys = sorted(sums)
    return [k[0] for k in keys], [k[1] for k in keys], [sums[k][0] for k in keys], [sums[k][1] for k in keys]


class Core:
    """What every section of the engine works with (engine.Inventory puts the sections together)."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis) -> None:
        self.pool = pool
        self.redis = redis
        self.scripts = lua.Scripts(redis)
        # Set when Redis lost its state: the maintenance loop rebuilds it at once.
        self._kick = asyncio.Event()

    # -- the shared stock lock ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            await conn.execute(store.LOCK_SHARED, store.STOCK_LOCK)
            try:
                yield conn
            finally:
                if not conn.is_closed():
                    await conn.execute(store.UNLOCK_SHARED, store.STOCK_LOCK)

    def not_loaded(self) -> ServiceUnavailable:
        """Redis lost its state: rebuild it now and tell the caller to retry (not "sold out")."""
        self._kick.set()
        return ServiceUnavailable("Stock is being reloaded, please retry")

    async def _load(self, conn: asyncpg.Connection, lines: Iterable[Line]) -> set[str]:
        """Load missing availability keys from PostgreSQL; returns the keys PostgreSQL does not know."""
        unknown: set[str] = set()
        for line in lines:
            async with conn.transaction():
                row = await conn.fetchrow(store.ROW_FOR_LOAD, line.product_id, line.variant_id)
                if row is None:
                    unknown.add(key_of(line))
                    continue
                keys = [lua.LOADED, key_of(line), lua.gone_key(line.product_id)]
                loaded = await self.scripts.call("load", keys, [row["available"], int(row["deleted"])])
                if text(loaded) == "NOT_LOADED":
                    self._kick.set()
        return unknown

    async def _move_stock(
        self,
        conn: asyncpg.Connection,
        moves: Sequence[Move],
        kind: str,
        note: str | None,
        traceparents: Mapping[uuid.UUID, str] | None = None,
        logged: bool = False,
    ) -> list[Event]:
        """Apply (order, line, on-hand delta, reserved delta) moves, log them (unless the caller already
        did, `logged`), and announce crossings: of a row's low-stock threshold, of a product's availability.

        A low-stock alert carries the trace of the order whose move crossed the threshold (the last one
        of the batch on that row) when `traceparents` knows it, so the seller's notice joins that
        checkout's trace; else the current context's, as every event's.
        """
        rows = await conn.fetch(
            store.APPLY_DELTAS, *_deltas((m[1].product_id, m[1].variant_id, m[2], m[3]) for m in moves)
        )
        events = await self._announce(conn, {row["product_id"] for row in rows if row["flipped"]})
        if not logged:
            await conn.execute(
                store.INSERT_LOG,
                [m[1].product_id for m in moves],
                [m[1].variant_id for m in moves],
                [m[0] for m in moves],
                [kind] * len(moves),
                [m[2] for m in moves],
                [m[3] for m in moves],
                [note] * len(moves),
            )
        crossed = [row for row in rows if row["crossed"]]
        if not crossed:
            return events
        # Rare (once per crossing), so the sellers are looked up here rather than on every move.
        sellers = dict(await conn.fetch(store.SELLERS, list({row["product_id"] for row in crossed})))
        alerts: list[Event] = []
        last_order = {(m[1].product_id, m[1].variant_id): m[0] for m in moves}
        for row in crossed:
            alert = LowStockAlert(
                product_id=row["product_id"],
                variant_id=wire_variant(row["variant_id"]),
                current_stock=row["available"],
                threshold=row["low_stock_threshold"],
                seller_id=sellers.get(row["product_id"]),
            )
            order = last_order.get((row["product_id"], row["variant_id"]))
            if order is not None and traceparents and order in traceparents:
                alert.traceparent = telemetry.handed_on(traceparents[order])
            alerts.append(alert)
        return events + alerts

    @staticmethod
    async def _announce(conn: asyncpg.Connection, products: Iterable[uuid.UUID]) -> list[Event]:
        """`inventory.availability-changed` for those of `products` (each with a row whose availability
        just crossed zero) whose own availability crossed zero with it: rare, so never on the hot path."""
        ids = sorted(products)
        if not ids:
            return []
        await conn.execute(store.LOCK_AVAILABILITY, ids)
        return [
            AvailabilityChanged(
                product_id=row["product_id"], available=row["available"], occurred_at=row["changed_at"]
            )
            for row in await conn.fetch(store.AVAILABILITY_FLIPS, ids)
        ]
