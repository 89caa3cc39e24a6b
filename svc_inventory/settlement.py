"""Settling reservations: commit (a sale), release, expiry (the sweepers) and a sale given back."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta

from redis.exceptions import RedisError

from kit.bus import Event, publish
from svc_inventory import lua, store
from svc_inventory.core import COMMITTED, EXPIRED, RELEASED, RESERVED, RETURNED, Core, key_of, text
from svc_inventory.schemas import Line
from svc_inventory.wire import StockReleased, wire_variant

_LOG_KIND = {RELEASED: "RELEASE", EXPIRED: "EXPIRE", COMMITTED: "COMMIT"}

log = logging.getLogger(__name__)


class Settlement(Core):
    """Moves RESERVED reservations on, in PostgreSQL first and Redis after (engine.py, rule 1)."""

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
                "adjust", [([lua.LOADED, key_of(line)], [line.quantity]) for line in lines]
            )
        except (RedisError, OSError) as exc:
            # Redis shows fewer units than there are; the reconciliation gives them back.
            log.warning("could not raise availability in Redis", extra={"error": repr(exc)})
            return
        if any(text(lua.table(reply)[0]) == "NOT_LOADED" for reply in replies):
            self._kick.set()

    async def sweep(self) -> int:
        """Expire the reservations whose deadline passed (the sorted set says which); how many moved."""
        due = await self.redis.zrangebyscore(lua.DEADLINES, "-inf", int(time.time() * 1000), start=0, num=500)
        if not due:
            return 0
        moved, _ = await self.finish([uuid.UUID(text(o)) for o in due], EXPIRED, "expired", due_only=True)
        return len(moved)

    async def sweep_database(self, grace: timedelta = timedelta(seconds=2)) -> int:
        """The safety net under the sorted set: expire overdue reservations PostgreSQL still holds."""
        async with self.pool.acquire() as conn:
            due = [r["order_id"] for r in await conn.fetch(store.DUE_IN_DATABASE, grace, 500)]
        if not due:
            return 0
        moved, _ = await self.finish(due, EXPIRED, "expired", due_only=True)
        return len(moved)
