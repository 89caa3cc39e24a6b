"""Reservations: Redis screens them in front, PostgreSQL records them behind, and the two stay in step.

The rules that make it never oversell and never leak a unit:

1. Redis availability only goes down before PostgreSQL records the change (a reservation, a lower
   on-hand) and only goes up after PostgreSQL committed it (a release, an expiry, a higher on-hand).
   A failure in between leaves Redis showing less than there is (undersold, repaired by the
   reconciliation), never more.
2. Every writer holds the stock lock shared from its Redis step until its PostgreSQL commit; a rebuild
   or reconciliation holds it exclusively, so it sees both stores at rest and can safely overwrite
   Redis from PostgreSQL.
3. Reservations are batched: concurrent ReserveStock calls share one Redis round trip (a script per
   order, each atomic for all its lines) and one PostgreSQL transaction (group commit), so a hot
   product costs one row update per batch instead of one locked transaction per buyer.
4. PostgreSQL's CHECK (reserved <= on_hand) refuses an oversold unit even if everything above failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from kit import db, telemetry, tracing
from kit.app import Deps
from kit.bus import Event, publish
from kit.errors import BusinessRuleViolation, Forbidden, NotFound, ServiceUnavailable
from kit.identity import Identity
from svc_inventory import lua, store
from svc_inventory.events import LowStockAlert, StockReleased, StockReserved, wire_variant
from svc_inventory.schemas import Line

log = logging.getLogger(__name__)

RESERVED, COMMITTED, RELEASED, EXPIRED = "RESERVED", "COMMITTED", "RELEASED", "EXPIRED"
RETURNED = "RETURNED"
"""A sale (COMMITTED) whose order was cancelled after all: its units went back on hand. Final."""
HOLDING = {RESERVED, COMMITTED}
_LOG_KIND = {RELEASED: "RELEASE", EXPIRED: "EXPIRE", COMMITTED: "COMMIT"}

batches = Histogram(
    "shop_inventory_reserve_batch_size",
    "Reservations per Redis round trip and PostgreSQL transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
outcomes = Counter("shop_inventory_reservations_total", "ReserveStock outcomes", ["outcome"])
drift = Counter(
    "shop_inventory_drift_total",
    "Differences between Redis and PostgreSQL found (and repaired) by the reconciliation",
    ["kind"],
)
drift_units = Counter("shop_inventory_drift_units_total", "Units of availability repaired in Redis")
rebuilds = Counter("shop_inventory_rebuilds_total", "Full rebuilds of Redis from PostgreSQL")


@dataclass(slots=True)
class Shortage:
    line: Line
    available: int
    known: bool


@dataclass(slots=True)
class Outcome:
    """The answer to ReserveStock."""

    reserved: bool
    state: str | None = None
    lines: list[Line] = field(default_factory=list)
    expires_at: datetime | None = None
    existing: bool = False
    reason: str = ""
    shortages: list[Shortage] = field(default_factory=list)


@dataclass(slots=True)
class _Request:
    order_id: uuid.UUID
    lines: list[Line]
    expires_ms: int
    token: str
    traceparent: str
    future: asyncio.Future[Outcome]


@dataclass(slots=True)
class SyncReport:
    rebuilt: bool = False
    availability_drift: int = 0
    units_repaired: int = 0
    reservation_drift: int = 0


def _key(line: Line) -> str:
    return lua.avail_key(line.product_id, line.variant_id)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lines_of(row: asyncpg.Record) -> list[Line]:
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


class Inventory:
    """One per process: the reservation batcher, the sweeper and the reconciliation, over one pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        hold_seconds: float = 900.0,
        reconcile_seconds: float = 30.0,
        batch: int = 256,
        writers: int = 1,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.scripts = lua.Scripts(redis)
        self.hold_seconds = hold_seconds
        self.reconcile_seconds = reconcile_seconds
        self.batch = batch
        self.writers = writers
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
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

    # -- reserve -----------------------------------------------------------------------------------

    async def reserve(self, order_id: uuid.UUID, lines: list[Line], hold_seconds: float = 0) -> Outcome:
        """Hold every line for the order, all or nothing; a repeat returns the existing reservation."""
        hold = hold_seconds or self.hold_seconds
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            _Request(
                order_id,
                sorted(lines, key=lambda line: (line.product_id, line.variant_id)),
                int((time.time() + hold) * 1000),
                os.urandom(8).hex(),
                tracing.traceparent.get(),
                future,
            )
        )
        outcome = await future
        outcomes.labels("reserved" if outcome.reserved else outcome.reason or "not_reserved").inc()
        return outcome

    async def run_batches(self) -> None:
        """The batcher: takes whatever calls are waiting and reserves them together."""
        try:
            # More than one batcher overlaps Redis and PostgreSQL round trips (CPU-bound here: one).
            await asyncio.gather(*(self._batches() for _ in range(self.writers)))
        finally:
            while not self._queue.empty():
                self._fail(self._queue.get_nowait(), ServiceUnavailable("Shutting down"))

    async def _batches(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batches.observe(len(batch))
            try:
                await self._reserve_batch(batch)
            except Exception as exc:
                log.warning("reservation batch failed", extra={"error": repr(exc), "size": len(batch)})
                for request in batch:
                    self._fail(request, exc)

    @staticmethod
    def _settle(request: _Request, outcome: Outcome) -> None:
        if not request.future.done():  # the caller may have given up (deadline)
            request.future.set_result(outcome)

    @staticmethod
    def _fail(request: _Request, exc: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(exc)

    def _reserve_call(self, r: _Request) -> lua.Call:
        keys = [lua.LOADED, lua.reservation_key(r.order_id), lua.DEADLINES]
        keys += [_key(line) for line in r.lines]
        keys += [lua.gone_key(line.product_id) for line in r.lines]
        args: list[lua.Arg] = [str(r.order_id), r.expires_ms, r.token, len(r.lines)]
        return keys, args + [line.quantity for line in r.lines]

    async def _reserve_batch(self, batch: list[_Request]) -> None:
        async with self._writer() as conn:
            calls = [self._reserve_call(r) for r in batch]
            results = [lua.table(res) for res in await self.scripts.call_many("reserve", calls)]
            missing = {
                _key(r.lines[int(i) - 1]): r.lines[int(i) - 1]
                for r, res in zip(batch, results, strict=True)
                if _text(res[0]) == "MISSING"
                for i in res[1:]
            }
            unknown: set[str] = set()
            if missing:
                unknown = await self._load(conn, missing.values())
                again = [i for i, res in enumerate(results) if _text(res[0]) == "MISSING"]
                retried = await self.scripts.call_many(
                    "reserve", [self._reserve_call(batch[i]) for i in again]
                )
                for i, res in zip(again, retried, strict=True):
                    results[i] = lua.table(res)
            taken: list[_Request] = []
            repeats: list[_Request] = []
            for r, res in zip(batch, results, strict=True):
                verdict = _text(res[0])
                if verdict == "OK":
                    taken.append(r)
                elif verdict == "EXISTS":
                    repeats.append(r)
                elif verdict == "NOT_LOADED":
                    self._fail(r, self.not_loaded())
                elif verdict == "MISSING":
                    shortages = [
                        Shortage(r.lines[int(i) - 1], 0, _key(r.lines[int(i) - 1]) not in unknown)
                        for i in res[1:]
                    ]
                    self._settle(r, Outcome(False, reason="unknown_product", shortages=shortages))
                else:
                    self._settle(r, self._short(r, res[1:]))
            if taken or repeats:
                await self._record(conn, taken, repeats)

    @staticmethod
    def _short(r: _Request, pairs: list[lua.Scalar]) -> Outcome:
        shortages = []
        gone = False
        for i in range(0, len(pairs), 2):
            available = int(pairs[i + 1])
            gone = gone or available < 0
            shortages.append(Shortage(r.lines[int(pairs[i]) - 1], max(available, 0), True))
        return Outcome(
            False, reason="unavailable_product" if gone else "insufficient_stock", shortages=shortages
        )

    async def _load(self, conn: asyncpg.Connection, lines: Iterable[Line]) -> set[str]:
        """Load missing availability keys from PostgreSQL; returns the keys PostgreSQL does not know."""
        unknown: set[str] = set()
        for line in lines:
            async with conn.transaction():
                row = await conn.fetchrow(store.ROW_FOR_LOAD, line.product_id, line.variant_id)
                if row is None:
                    unknown.add(_key(line))
                    continue
                keys = [lua.LOADED, _key(line), lua.gone_key(line.product_id)]
                loaded = await self.scripts.call("load", keys, [row["available"], int(row["deleted"])])
                if _text(loaded) == "NOT_LOADED":
                    self._kick.set()
        return unknown

    async def _record(self, conn: asyncpg.Connection, taken: list[_Request], repeats: list[_Request]) -> None:
        """Record the batch's new reservations in PostgreSQL, or give their units back in Redis."""
        try:
            async with conn.transaction():
                fresh_ids = {
                    row["order_id"]
                    for row in await conn.fetch(
                        store.INSERT_RESERVATIONS,
                        [r.order_id for r in taken],
                        [RESERVED] * len(taken),
                        [datetime.fromtimestamp(r.expires_ms / 1000, UTC) for r in taken],
                    )
                }
                fresh = [r for r in taken if r.order_id in fresh_ids]
                # PostgreSQL already knew these orders (Redis had forgotten them): not a new reservation.
                known = [r for r in taken if r.order_id not in fresh_ids]
                events = await self._write_reservations(conn, fresh)
                await publish(conn, *events)
                asked = [r.order_id for r in (*repeats, *known)]
                existing = {
                    row["order_id"]: row for row in await conn.fetch(store.RESERVATIONS_WITH_LINES, asked)
                }
        except BaseException:
            await self._undo(taken)
            raise
        await self._undo(known)
        for r in fresh:
            self._settle(
                r, Outcome(True, RESERVED, r.lines, datetime.fromtimestamp(r.expires_ms / 1000, UTC))
            )
        for r in (*repeats, *known):
            row = existing.get(r.order_id)
            if row is None:
                # Redis holds it but PostgreSQL does not yet: the first call is still in flight elsewhere.
                self._fail(r, ServiceUnavailable("This order's reservation is in progress, please retry"))
                continue
            self._settle(
                r,
                Outcome(
                    row["state"] in HOLDING,
                    row["state"],
                    _lines_of(row),
                    row["expires_at"],
                    existing=True,
                    reason="" if row["state"] in HOLDING else "reservation_" + row["state"].lower(),
                ),
            )

    async def _write_reservations(self, conn: asyncpg.Connection, fresh: list[_Request]) -> list[Event]:
        lines = [(r, line) for r in fresh for line in r.lines]
        if not lines:
            return []
        await conn.execute(
            store.INSERT_LINES,
            [r.order_id for r, _ in lines],
            [line.product_id for _, line in lines],
            [line.variant_id for _, line in lines],
            [line.quantity for _, line in lines],
        )
        events: list[Event] = [
            StockReserved(
                reservation_id=r.order_id,
                order_id=r.order_id,
                product_id=line.product_id,
                variant_id=wire_variant(line.variant_id),
                quantity=line.quantity,
                traceparent=telemetry.handed_on(r.traceparent),
            )
            for r, line in lines
        ]
        moves = [(r.order_id, line, 0, line.quantity) for r, line in lines]
        return events + await self._move_stock(conn, moves, "RESERVE", None)

    async def _move_stock(
        self,
        conn: asyncpg.Connection,
        moves: Sequence[tuple[uuid.UUID | None, Line, int, int]],
        kind: str,
        note: str | None,
    ) -> list[Event]:
        """Apply (order, line, on-hand delta, reserved delta) moves, log them, and alert on crossings."""
        rows = await conn.fetch(
            store.APPLY_DELTAS, *_deltas((m[1].product_id, m[1].variant_id, m[2], m[3]) for m in moves)
        )
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
            return []
        # Rare (once per crossing), so the sellers are looked up here rather than on every move.
        sellers = dict(await conn.fetch(store.SELLERS, list({row["product_id"] for row in crossed})))
        return [
            LowStockAlert(
                product_id=row["product_id"],
                variant_id=wire_variant(row["variant_id"]),
                current_stock=row["available"],
                threshold=row["low_stock_threshold"],
                seller_id=sellers.get(row["product_id"]),
            )
            for row in crossed
        ]

    async def _undo(self, requests: Sequence[_Request]) -> None:
        """Give back what these calls took in Redis (their PostgreSQL record failed or was refused)."""
        if not requests:
            return
        try:
            await self.scripts.call_many(
                "finish",
                [
                    (
                        [lua.LOADED, lua.reservation_key(r.order_id), lua.DEADLINES],
                        [str(r.order_id), "UNDONE", 1, r.token, lua.FINISHED_TTL_MS],
                    )
                    for r in requests
                ],
            )
        except (RedisError, OSError) as exc:
            # Redis now shows fewer units than there are; the reconciliation gives them back.
            log.warning("could not undo reservations in Redis", extra={"error": repr(exc)})

    # -- release, commit, expire -------------------------------------------------------------------

    async def release(self, order_id: uuid.UUID, reason: str = "released") -> tuple[bool, str | None]:
        """RESERVED -> RELEASED; anything else changes nothing. Returns (moved, state after)."""
        moved, states = await self.finish([order_id], RELEASED, reason or "released")
        return bool(moved), states.get(order_id)

    async def commit(self, order_id: uuid.UUID) -> tuple[bool, str | None]:
        """RESERVED -> COMMITTED: the units leave on-hand stock. Returns (committed, state after)."""
        _, states = await self.finish([order_id], COMMITTED, "committed")
        return states.get(order_id) == COMMITTED, states.get(order_id)

    async def finish(
        self, order_ids: list[uuid.UUID], state: str, reason: str, due_only: bool = False
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, str]]:
        """Move RESERVED reservations to `state` in PostgreSQL, then in Redis; (moved, states after)."""
        async with self._writer() as conn:
            async with conn.transaction():
                rows = await conn.fetch(store.FINISH_RESERVATIONS, order_ids, state, reason, not due_only)
                if rows:
                    on_hand = -1 if state == COMMITTED else 0
                    moves = [
                        (
                            r["order_id"],
                            line := Line(r["product_id"], r["variant_id"], r["quantity"]),
                            on_hand * line.quantity,
                            -line.quantity,
                        )
                        for r in rows
                    ]
                    events = await self._move_stock(conn, moves, _LOG_KIND[state], reason)
                    if state != COMMITTED:
                        events += self._released(moves, state.lower())
                    await publish(conn, *events)
                states = {r["order_id"]: r["state"] for r in await conn.fetch(store.STATES, order_ids)}
            moved = {r["order_id"] for r in rows}
            # Redis follows PostgreSQL's final word (also repairing a Redis step that failed earlier).
            final = [(o, s) for o, s in states.items() if s != RESERVED]
            try:
                await self.scripts.call_many(
                    "finish",
                    [
                        (
                            [lua.LOADED, lua.reservation_key(o), lua.DEADLINES],
                            [str(o), s, 0 if s == COMMITTED else 1, "", lua.FINISHED_TTL_MS],
                        )
                        for o, s in final
                    ],
                )
            except (RedisError, OSError) as exc:
                log.warning("could not finish reservations in Redis", extra={"error": repr(exc)})
        return moved, states

    @staticmethod
    def _released(moves: Iterable[tuple[uuid.UUID, Line, int, int]], reason: str) -> list[Event]:
        return [
            StockReleased(
                reservation_id=o,
                order_id=o,
                product_id=line.product_id,
                variant_id=wire_variant(line.variant_id),
                quantity=line.quantity,
                reason=reason,
            )
            for o, line, _, _ in moves
        ]

    async def cancel(self, order_id: uuid.UUID, reason: str) -> str | None:
        """The order is cancelled: a held reservation is released, a sale's units go back on hand.

        Either happens once whatever the repeats; a reservation already released or expired (or one
        this service never saw) has nothing to give back. Returns the reservation's state after.
        """
        _, state = await self.release(order_id, reason)
        if state == COMMITTED:
            await self.give_back(order_id, reason)
            return RETURNED
        return state

    async def give_back(self, order_id: uuid.UUID, reason: str) -> bool:
        """COMMITTED -> RETURNED: the sale's units go back on hand, once; whether this call moved them."""
        async with self._writer() as conn:
            async with conn.transaction():
                rows = await conn.fetch(store.RETURN_RESERVATION, order_id, reason)
                moves = [
                    (
                        order_id,
                        line := Line(r["product_id"], r["variant_id"], r["quantity"]),
                        line.quantity,
                        0,
                    )
                    for r in rows
                ]
                if moves:
                    events = await self._move_stock(conn, moves, "RETURN", reason)
                    await publish(conn, *events, *self._released(moves, "returned"))
            if moves:
                # Only now that PostgreSQL committed does Redis show the units again (rule 1).
                await self._raise_availability([line for _, line, _, _ in moves])
        return bool(moves)

    async def _raise_availability(self, lines: Sequence[Line]) -> None:
        try:
            replies = await self.scripts.call_many(
                "adjust", [([lua.LOADED, _key(line)], [line.quantity]) for line in lines]
            )
        except (RedisError, OSError) as exc:
            # Redis shows fewer units than there are; the reconciliation gives them back.
            log.warning("could not raise availability in Redis", extra={"error": repr(exc)})
            return
        if any(_text(lua.table(reply)[0]) == "NOT_LOADED" for reply in replies):
            self._kick.set()

    async def sweep(self) -> int:
        """Expire the reservations whose deadline passed (the sorted set says which); how many moved."""
        due = await self.redis.zrangebyscore(lua.DEADLINES, "-inf", int(time.time() * 1000), start=0, num=500)
        if not due:
            return 0
        moved, _ = await self.finish([uuid.UUID(_text(o)) for o in due], EXPIRED, "expired", due_only=True)
        return len(moved)

    async def sweep_database(self, grace: timedelta = timedelta(seconds=2)) -> int:
        """The safety net under the sorted set: expire overdue reservations PostgreSQL still holds."""
        async with self.pool.acquire() as conn:
            due = [r["order_id"] for r in await conn.fetch(store.DUE_IN_DATABASE, grace, 500)]
        if not due:
            return 0
        moved, _ = await self.finish(due, EXPIRED, "expired", due_only=True)
        return len(moved)

    # -- stock levels ------------------------------------------------------------------------------

    async def availability(self, lines: Sequence[Line]) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
        """Available units of each line's row, as PostgreSQL has them; unknown rows are absent."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                store.AVAILABILITY, [line.product_id for line in lines], [line.variant_id for line in lines]
            )
        return {(r["product_id"], r["variant_id"]): r["available"] for r in rows}

    async def set_stock(
        self, who: Identity, product_id: uuid.UUID, variant_id: uuid.UUID, quantity: int, threshold: int
    ) -> None:
        """Set on-hand and threshold, atomically against live reservations (Seller of it or Admin)."""
        async with self._writer() as conn:
            delta = 0
            row = None
            try:
                async with conn.transaction():
                    product = await conn.fetchrow(store.PRODUCT, product_id)
                    if product is None or product["deleted_at"] is not None:
                        if not who.is_admin:
                            raise NotFound("Product not found in inventory")
                    elif not who.is_admin and product["seller_id"] != who.user_id:
                        raise Forbidden("Only the product's seller or an Admin may set its stock")
                    row = await conn.fetchrow(store.ROW_FOR_UPDATE, product_id, variant_id)
                    if row is None:
                        result = await conn.fetchrow(
                            store.INSERT_ROW, product_id, variant_id, quantity, threshold
                        )
                        if result is None:
                            raise ServiceUnavailable("The stock row was created concurrently, please retry")
                        moved = quantity
                    else:
                        if quantity < row["reserved"]:
                            raise BusinessRuleViolation(
                                f"{row['reserved']} units are held by reservations;"
                                " on hand cannot go below that"
                            )
                        delta = quantity - row["on_hand"]
                        if delta < 0:
                            await self._adjust(product_id, variant_id, delta)
                        result = await conn.fetchrow(
                            store.SET_ROW, product_id, variant_id, quantity, threshold, row["low_alerted"]
                        )
                        moved = delta
                    await conn.execute(
                        store.INSERT_LOG,
                        [product_id],
                        [variant_id],
                        [None],
                        ["ADJUST"],
                        [moved],
                        [0],
                        ["set"],
                    )
                    if result["crossed"]:
                        await publish(
                            conn,
                            LowStockAlert(
                                product_id=product_id,
                                variant_id=wire_variant(variant_id),
                                current_stock=result["available"],
                                threshold=threshold,
                                seller_id=None if product is None else product["seller_id"],
                            ),
                        )
            except BaseException:
                if delta < 0:
                    await self._adjust(product_id, variant_id, -delta, best_effort=True)
                raise
            if row is None:
                # Loaded only now that the row is committed: a key must never promise a row that is not.
                with contextlib.suppress(RedisError, OSError):
                    await self._load(conn, [Line(product_id, variant_id, quantity)])
            elif delta > 0:
                await self._adjust(product_id, variant_id, delta, best_effort=True)

    async def _adjust(
        self, product_id: uuid.UUID, variant_id: uuid.UUID, delta: int, best_effort: bool = False
    ) -> None:
        try:
            result = await self.scripts.call(
                "adjust", [lua.LOADED, lua.avail_key(product_id, variant_id)], [delta]
            )
        except (RedisError, OSError) as exc:
            if not best_effort:
                raise
            log.warning("could not adjust availability in Redis", extra={"error": repr(exc)})
            return
        verdict = _text(lua.table(result)[0])
        if verdict == "SHORT":
            raise BusinessRuleViolation("Units are held by reservations; on hand cannot go below that")
        if verdict == "NOT_LOADED":
            self._kick.set()

    # -- rebuild and reconciliation ----------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Rebuild Redis from PostgreSQL when it lost its state, else find and repair drift."""
        report = SyncReport()
        async with self.pool.acquire() as conn:
            await conn.execute(store.LOCK_EXCLUSIVE, store.STOCK_LOCK)
            try:
                rows = await conn.fetch(store.ALL_ROWS)
                active = await conn.fetch(store.ACTIVE_RESERVATIONS)
                if not await self.redis.exists(lua.LOADED):
                    await self._rebuild(rows, active)
                    report.rebuilt = True
                else:
                    await self._repair(conn, rows, active, report)
            finally:
                if not conn.is_closed():
                    await conn.execute(store.UNLOCK_EXCLUSIVE, store.STOCK_LOCK)
        return report

    @staticmethod
    def _hold(pipe: Pipeline, row: asyncpg.Record) -> None:
        lines = _lines_of(row)
        order = str(row["order_id"])
        pipe.hset(
            lua.reservation_key(row["order_id"]),
            mapping={
                "s": RESERVED,
                "x": row["expires_ms"],
                "t": "",
                "k": " ".join(_key(line) for line in lines),
                "q": " ".join(str(line.quantity) for line in lines),
            },
        )
        pipe.zadd(lua.DEADLINES, {order: row["expires_ms"]})

    async def _rebuild(self, rows: list[asyncpg.Record], active: list[asyncpg.Record]) -> None:
        stale = [key async for key in self.redis.scan_iter(match="inv:*", count=1000)]
        for i in range(0, len(stale), 1000):
            await self.redis.unlink(*stale[i : i + 1000])
        pipe = self.redis.pipeline(transaction=False)
        for n, row in enumerate(rows, 1):
            pipe.set(lua.avail_key(row["product_id"], row["variant_id"]), row["available"])
            if row["deleted"]:
                pipe.set(lua.gone_key(row["product_id"]), 1)
            if n % 2000 == 0:
                await pipe.execute()
        for row in active:
            self._hold(pipe, row)
        pipe.set(lua.LOADED, int(time.time()))
        await pipe.execute()
        rebuilds.inc()
        log.info("rebuilt Redis from PostgreSQL", extra={"rows": len(rows), "reservations": len(active)})

    async def _repair(
        self,
        conn: asyncpg.Connection,
        rows: list[asyncpg.Record],
        active: list[asyncpg.Record],
        report: SyncReport,
    ) -> None:
        # Reservations: Redis holds exactly PostgreSQL's active ones (availability is set below).
        in_redis = {_text(o) for o in await self.redis.zrange(lua.DEADLINES, 0, -1)}
        in_pg = {str(row["order_id"]): row for row in active}
        pipe = self.redis.pipeline(transaction=False)
        extra = [uuid.UUID(o) for o in in_redis - set(in_pg)]
        states = {r["order_id"]: r["state"] for r in await conn.fetch(store.STATES, extra)} if extra else {}
        for order_id in extra:
            pipe.hset(lua.reservation_key(order_id), "s", states.get(order_id, EXPIRED))
            pipe.pexpire(lua.reservation_key(order_id), lua.FINISHED_TTL_MS)
            pipe.zrem(lua.DEADLINES, str(order_id))
        for order in set(in_pg) - in_redis:
            self._hold(pipe, in_pg[order])
        report.reservation_drift = len(extra) + len(set(in_pg) - in_redis)
        keys = [lua.avail_key(row["product_id"], row["variant_id"]) for row in rows]
        seen: list[bytes | str | None] = []
        for i in range(0, len(keys), 2000):
            seen += await self.redis.mget(keys[i : i + 2000])
        for key, row, value in zip(keys, rows, seen, strict=True):
            if row["deleted"]:
                pipe.set(lua.gone_key(row["product_id"]), 1)
            if value is not None and int(value) != row["available"]:
                report.availability_drift += 1
                report.units_repaired += abs(int(value) - row["available"])
                pipe.set(key, row["available"])
        await pipe.execute()
        if report.reservation_drift:
            drift.labels("reservation").inc(report.reservation_drift)
        if report.availability_drift:
            drift.labels("availability").inc(report.availability_drift)
            drift_units.inc(report.units_repaired)
            log.warning(
                "repaired drift between Redis and PostgreSQL",
                extra={"rows": report.availability_drift, "units": report.units_repaired},
            )

    # -- background work ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The process's background work: batcher, sweeper and reconciliation, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.run_batches())
            group.create_task(self._every(0.2, self.sweep))
            group.create_task(self._maintain())

    @staticmethod
    async def _every(seconds: float, step: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await step()
            except Exception as exc:
                log.warning("inventory background step failed", extra={"error": repr(exc)})
            await asyncio.sleep(seconds)

    async def _maintain(self) -> None:
        """Rebuild as soon as Redis lost its state; reconcile and sweep PostgreSQL now and then."""
        last_reconcile = last_sweep = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=1.0)
            self._kick.clear()
            now = time.monotonic()
            try:
                if not await self.redis.exists(lua.LOADED) or now - last_reconcile >= self.reconcile_seconds:
                    await self.sync()
                    last_reconcile = now
                if now - last_sweep >= 5.0:
                    await self.sweep_database()
                    last_sweep = now
            except Exception as exc:
                log.warning("inventory maintenance failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(0.5)


_STATE_KEY = "inventory"


def of(deps: Deps) -> Inventory:
    """The process's Inventory (created by `start`)."""
    inventory = deps.state[_STATE_KEY]
    assert isinstance(inventory, Inventory)
    return inventory


async def start(deps: Deps) -> None:
    """`Service.on_start`: create the process's Inventory from its settings."""
    assert deps.redis is not None
    config = deps.settings
    extra = config.extra
    pool = deps.db
    if config.database_direct_url != config.database_url:
        # The stock lock is a session advisory lock held across statements: with a transaction pooler
        # (PgBouncer) in front, the engine connects straight to the server instead.
        pool = await db.pool_for(config, direct=True)
    inventory = deps.state[_STATE_KEY] = Inventory(
        pool,
        deps.redis,
        hold_seconds=float(extra.get("INVENTORY_RESERVATION_SECONDS", "900")),
        reconcile_seconds=float(extra.get("INVENTORY_RECONCILE_SECONDS", "30")),
    )
    try:
        await inventory.sync()  # load Redis before the first call, when it is up
    except (RedisError, OSError) as exc:
        log.warning("Redis unavailable at start; loading it once it is back", extra={"error": repr(exc)})


async def background(deps: Deps) -> None:
    """`Service.jobs` entry: the Inventory's batcher, sweeper and reconciliation."""
    inventory = of(deps)
    try:
        await inventory.run()
    finally:
        if inventory.pool is not deps.db:
            await inventory.pool.close()


async def stock_loaded(deps: Deps) -> None:
    """`Service.ready_checks`: not ready while Redis lacks the stock (flushed or restarted, and rebuilt
    from PostgreSQL meanwhile): reservations answer UNAVAILABLE until then, so gRPC health says so too."""
    assert deps.redis is not None
    if not await deps.redis.exists(lua.LOADED):
        raise ServiceUnavailable("Stock is being reloaded")
