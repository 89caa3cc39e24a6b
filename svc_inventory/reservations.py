"""Reserving stock: concurrent ReserveStock calls batched into one Redis round trip and one PostgreSQL
transaction (engine.py, rule 3)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit import telemetry, tracing
from kit.bus import Event, event_ids, outbox_arrays, publish
from kit.errors import ServiceUnavailable
from kit.lifecycle import raise_if_cancelled
from svc_inventory import lua, store
from svc_inventory.core import HOLDING, RESERVED, Core, key_of, lines_of
from svc_inventory.schemas import Line
from svc_inventory.wire import StockReserved, wire_variant

batches = Histogram(
    "shop_inventory_reserve_batch_size",
    "Reservations per Redis round trip and PostgreSQL transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
outcomes = Counter("shop_inventory_reservations_total", "ReserveStock outcomes", ["outcome"])
_reserved = outcomes.labels("reserved")

log = logging.getLogger(__name__)


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
    traceparent: str
    future: asyncio.Future[Outcome]

    def order(self) -> lua.Order:
        """This call as an order of a RESERVE batch."""
        entry: lua.Order = [str(self.order_id), str(self.expires_ms)]
        for line in self.lines:
            entry += (*lua.row_keys(line.product_id, line.variant_id), line.quantity)
        return entry


class Reservations(Core):
    """The reservation batcher: `reserve` queues a call, `run_batches` serves the queue."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: Redis,
        hold_seconds: float = 900.0,
        batch: int = 256,
        writers: int = 1,
    ) -> None:
        super().__init__(pool, redis)
        self.hold_seconds = hold_seconds
        self.batch = batch
        self.writers = writers
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()

    async def reserve(self, order_id: uuid.UUID, lines: list[Line], hold_seconds: float = 0) -> Outcome:
        """Hold every line for the order, all or nothing; a repeat returns the existing reservation."""
        hold = hold_seconds or self.hold_seconds
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            _Request(
                order_id,
                sorted(lines, key=lambda line: (line.product_id, line.variant_id))
                if len(lines) > 1
                else lines,
                int((time.time() + hold) * 1000),
                tracing.traceparent.get(),
                future,
            )
        )
        outcome = await future
        if outcome.reserved:
            _reserved.inc()  # the label looked up once: this runs for every reservation
        else:
            outcomes.labels(outcome.reason or "not_reserved").inc()
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
                raise_if_cancelled()
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

    async def _reserve_in_redis(self, batch: Sequence[_Request], token: str) -> list[list[lua.Scalar]] | None:
        """One RESERVE call for the whole batch: a reply per request, or None when Redis is not loaded."""
        return lua.per_order(
            await self.scripts.call("reserve", *lua.reserve_call([r.order() for r in batch], token))
        )

    async def _reserve_batch(self, batch: list[_Request]) -> None:
        # One attempt token for the batch: an order appears in it once (a repeat finds the first).
        token = os.urandom(8).hex()
        async with self._writer() as conn:
            results = await self._reserve_in_redis(batch, token)
            if results is None:
                for r in batch:
                    self._fail(r, self.not_loaded())
                return
            missing = {
                key_of(r.lines[int(i) - 1]): r.lines[int(i) - 1]
                for r, res in zip(batch, results, strict=True)
                if res[0] == b"MISSING"
                for i in res[1:]
            }
            unknown: set[str] = set()
            if missing:
                unknown = await self._load(conn, missing.values())
                again = [i for i, res in enumerate(results) if res[0] == b"MISSING"]
                retried = await self._reserve_in_redis([batch[i] for i in again], token)
                if retried is None:  # flushed meanwhile, with what this batch took: retry all of it
                    for r in batch:
                        self._fail(r, self.not_loaded())
                    return
                for i, res in zip(again, retried, strict=True):
                    results[i] = res
            taken: list[_Request] = []
            repeats: list[_Request] = []
            for r, res in zip(batch, results, strict=True):
                verdict = res[0]
                if verdict == b"OK":
                    taken.append(r)
                elif verdict == b"EXISTS":
                    repeats.append(r)
                elif verdict == b"MISSING":
                    shortages = [
                        Shortage(r.lines[int(i) - 1], 0, key_of(r.lines[int(i) - 1]) not in unknown)
                        for i in res[1:]
                    ]
                    self._settle(r, Outcome(False, reason="unknown_product", shortages=shortages))
                else:
                    self._settle(r, self._short(r, res[1:]))
            if taken or repeats:
                await self._record(conn, taken, repeats, token)

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

    async def _record(
        self, conn: asyncpg.Connection, taken: list[_Request], repeats: list[_Request], token: str
    ) -> None:
        """Record the batch's new reservations in PostgreSQL, or give their units back in Redis."""
        expiries = [datetime.fromtimestamp(r.expires_ms / 1000, UTC) for r in taken]
        lines = [(r, line) for r in taken for line in r.lines]
        existing: dict[uuid.UUID, asyncpg.Record] = {}
        try:
            async with conn.transaction():
                fresh_ids = {
                    row["order_id"]
                    for row in await conn.fetch(
                        store.RECORD_RESERVATIONS,
                        [r.order_id for r in taken],
                        expiries,
                        [r.order_id for r, _ in lines],
                        [line.product_id for _, line in lines],
                        [line.variant_id for _, line in lines],
                        [line.quantity for _, line in lines],
                        *outbox_arrays(self._reserved(lines)),
                        [r.order_id for r, _ in lines],
                    )
                }
                # PostgreSQL already knew these orders (Redis had forgotten them): not a new reservation.
                known = [r for r in taken if r.order_id not in fresh_ids]
                moves = [(r.order_id, line, 0, line.quantity) for r, line in lines if r.order_id in fresh_ids]
                if moves:
                    traceparents = {r.order_id: r.traceparent for r in taken}
                    crossed = await self._move_stock(conn, moves, "RESERVE", None, traceparents, logged=True)
                    await publish(conn, *crossed)
                if asked := [r.order_id for r in (*repeats, *known)]:
                    existing = {
                        row["order_id"]: row for row in await conn.fetch(store.RESERVATIONS_WITH_LINES, asked)
                    }
        except BaseException:
            await self._undo(taken, token)
            raise
        await self._undo(known, token)
        for r, expires_at in zip(taken, expiries, strict=True):
            if r.order_id in fresh_ids:
                self._settle(r, Outcome(True, RESERVED, r.lines, expires_at))
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
                    lines_of(row),
                    row["expires_at"],
                    existing=True,
                    reason="" if row["state"] in HOLDING else "reservation_" + row["state"].lower(),
                ),
            )

    @staticmethod
    def _reserved(lines: Sequence[tuple[_Request, Line]]) -> list[Event]:
        """An inventory.reserved per line, each in its order's trace (written only for a new reservation)."""
        return [
            StockReserved(
                event_id=event_id,
                reservation_id=r.order_id,
                order_id=r.order_id,
                product_id=line.product_id,
                variant_id=wire_variant(line.variant_id),
                quantity=line.quantity,
                traceparent=telemetry.handed_on(r.traceparent),
            )
            for (r, line), event_id in zip(lines, event_ids(len(lines)), strict=True)
        ]

    async def _undo(self, requests: Sequence[_Request], token: str) -> None:
        """Give back what these calls took in Redis (their PostgreSQL record failed or was refused)."""
        if not requests:
            return
        try:
            await self.scripts.call_many(
                "finish",
                [
                    (
                        [lua.LOADED, lua.reservation_key(r.order_id), lua.DEADLINES],
                        [str(r.order_id), "UNDONE", 1, token, lua.FINISHED_TTL_MS],
                    )
                    for r in requests
                ],
            )
        except (RedisError, OSError) as exc:
            # Redis now shows fewer units than there are; the reconciliation gives them back.
            log.warning("could not undo reservations in Redis", extra={"error": repr(exc)})
