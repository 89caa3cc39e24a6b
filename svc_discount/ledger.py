"""Validating a discount for an order and reserving its usage: what REST and gRPC both call."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from kit.app import Deps
from kit.lifecycle import every
from svc_discount import store
from svc_discount.config import DiscountConfig
from svc_discount.pricing import ZERO, OrderLine, Verdict, evaluate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """Whether a discount applies, how much it takes off, and which one (or why not)."""

    valid: bool
    amount: Decimal
    reason: str
    code: str = ""
    discount_id: uuid.UUID | None = None
    existing: bool = False


def _answer(row: asyncpg.Record | None, verdict: Verdict) -> Answer:
    if row is None:
        return Answer(False, ZERO, verdict.reason)
    return Answer(verdict.valid, verdict.amount, verdict.reason, row["code"], row["id"])


async def _uses(conn: asyncpg.Connection, discount_id: uuid.UUID, user_id: uuid.UUID | None) -> int | None:
    if user_id is None:
        return None
    uses: int = await conn.fetchval(store.USER_USES, discount_id, user_id)
    return uses


async def choose(
    conn: asyncpg.Connection,
    code: str | None,
    user_id: uuid.UUID | None,
    subtotal: Decimal,
    lines: Sequence[OrderLine],
) -> tuple[asyncpg.Record | None, Verdict]:
    """The discount `code` names, or with no code the best automatic one, and its verdict."""
    now = datetime.now(UTC)
    if code:
        row = await conn.fetchrow(store.DISCOUNT_BY_CODE, code.strip())
        if row is None:
            return None, Verdict(ZERO, "not_found")
        return row, evaluate(row, subtotal, lines, now, await _uses(conn, row["id"], user_id))
    rows = await conn.fetch(store.AUTOMATIC)
    uses: dict[uuid.UUID, int] = {}
    if rows and user_id is not None:
        found = await conn.fetch(store.USER_USES_OF_MANY, [r["id"] for r in rows], user_id)
        uses = {r["discount_id"]: r["uses"] for r in found}
    best: tuple[asyncpg.Record | None, Verdict] = (None, Verdict(ZERO, "no_automatic_discount"))
    for row in rows:
        verdict = evaluate(row, subtotal, lines, now, None if user_id is None else uses.get(row["id"], 0))
        if verdict.valid and verdict.amount > best[1].amount:
            best = (row, verdict)
    return best


async def validate(
    pool: asyncpg.Pool,
    code: str | None,
    user_id: uuid.UUID | None,
    subtotal: Decimal,
    lines: Sequence[OrderLine] = (),
) -> Answer:
    """What the discount takes off this order; holds nothing."""
    async with pool.acquire() as conn:
        return _answer(*await choose(conn, code, user_id, subtotal, lines))


class _Refused(Exception):
    """Rolls the reservation back: a limit was reached inside the transaction."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


async def _existing(conn: asyncpg.Connection, order_id: uuid.UUID) -> Answer | None:
    usage = await conn.fetchrow(store.USAGE_OF_ORDER, order_id)
    if usage is None:
        return None
    held = usage["state"] != "RELEASED"
    return Answer(
        held,
        usage["amount"] if held else ZERO,
        "" if held else "usage_released",
        usage["code"],
        usage["discount_id"],
        existing=True,
    )


async def apply(
    pool: asyncpg.Pool,
    order_id: uuid.UUID,
    code: str | None,
    user_id: uuid.UUID,
    subtotal: Decimal,
    lines: Sequence[OrderLine] = (),
) -> Answer:
    """Reserve one usage of the discount for the order, atomically against its limits; idempotent."""
    async with pool.acquire() as conn:
        if found := await _existing(conn, order_id):
            return found
        row, verdict = await choose(conn, code, user_id, subtotal, lines)
        if row is None or not verdict.valid:
            return _answer(row, verdict)
        try:
            async with conn.transaction():
                if await conn.fetchval(store.TAKE_USAGE, row["id"]) is None:
                    raise _Refused("usage_limit_reached")
                limit = row["per_user_limit"]
                if limit is not None and await conn.fetchval(store.USER_USES, row["id"], user_id) >= limit:
                    raise _Refused("user_limit_reached")
                if (
                    await conn.fetchval(store.INSERT_USAGE, order_id, row["id"], user_id, verdict.amount)
                    is None
                ):
                    raise _Refused("")  # the same order won a concurrent call: answer as it did
        except _Refused as refused:
            if refused.reason:
                return Answer(False, ZERO, refused.reason, row["code"], row["id"])
            found = await _existing(conn, order_id)
            assert found is not None
            return found
        return _answer(row, verdict)


async def expire_held(pool: asyncpg.Pool, hold: timedelta, batch: int = 500) -> int:
    """Free the usages RESERVED for longer than `hold` (their order's outcome never reached us), once;
    how many were freed."""
    freed = 0
    while True:
        async with pool.acquire() as conn:
            count: int = await conn.fetchval(store.EXPIRE_HELD_USAGES, hold, batch)
        freed += count
        if count < batch:
            return freed


async def expire_held_usages(deps: Deps) -> None:
    """`Service.jobs` entry: every `DISCOUNT_USAGE_SWEEP_SECONDS` (60), free the usages held past
    `DISCOUNT_USAGE_HOLD_SECONDS` (1500: the order's 15-minute payment window and 10 minutes' grace)."""
    config = DiscountConfig.of(deps.settings)

    async def expire() -> None:
        if freed := await expire_held(deps.db, config.usage_hold):
            log.info("freed discount usages held too long", extra={"count": freed})

    await every(config.usage_sweep_seconds, expire, name="usage-expiry")
