"""Checkout intents: what makes the checkout saga recoverable after a crash.

A checkout asks svc_discount and svc_inventory to hold a usage and stock for an order that exists only
once its own transaction commits. A process that dies in between (SIGKILL, OOM, a lost machine) would
leave those holds until they expire on their own (the stock 20 minutes later). So, for every checkout:

    1. `Journal.record`: the intent (order id, user, lines, discount code) is committed in a short
       transaction of its own BEFORE anything is held;
    2. closed by the statement that creates the order (store.CREATE_ORDER): the intent row is deleted
       (the order is its record). It deletes only an OPEN intent, so an order can never be created for
       an intent that was compensated meanwhile: the checkout is then refused (503, nothing ordered,
       retry);
    3. a checkout that fails or is refused compensates itself (`compensate`): the stock released at
       once, `checkout.aborted` through the outbox where still owed, the intent marked compensated,
       all under the intent row's lock;
    4. `recover` (a job of every svc_order process, at start and every `ORDER_INTENT_RECOVERY_SECONDS`)
       does the same for intents still open `ORDER_DEADLINE_SECONDS + ORDER_INTENT_GRACE_SECONDS` after
       they were recorded: their checkout died. Rows are taken with SKIP LOCKED, so two processes never
       work on the same intent, and a checkout that is committing (its DELETE holds the row) is skipped.

Every undo is idempotent: ReleaseStock moves only a RESERVED reservation, svc_discount and svc_inventory
act on `checkout.aborted` once per order id. The event is also the fallback when svc_inventory cannot be
reached: it releases by order id when it reads it, so "compensated" means "the undo is durably on its
way". Compensated intents are kept `KEEP_HOURS` for the record, then pruned.

Left open: a ReserveStock or ApplyDiscount that takes effect after the recovery job compensated its
intent (more than the deadline plus the grace after it was sent: gRPC cancels a call at its deadline,
so only a wedged server) holds until it expires, as before: the reservation after the payment window
plus `ORDER_HOLD_GRACE_SECONDS`, the usage through svc_discount's sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import grpc
import msgspec
from prometheus_client import Counter

from kit import db
from kit.app import Deps, Resource
from kit.bus import publish
from protos import inventory_pb2
from svc_order import store
from svc_order.config import OrderConfig
from svc_order.downstream import Downstream
from svc_order.events import CheckoutAborted, StockLine

log = logging.getLogger(__name__)
recovered = Counter("shop_checkout_intents_recovered_total", "Checkouts compensated by the recovery job")

RECOVERY_BATCH = 100
KEEP_HOURS = 24
# Intent writes are one short statement each; a few connections carry hundreds of checkouts a second.
JOURNAL_CONNECTIONS = 4

_encode_lines = msgspec.json.Encoder().encode
_decode_lines = msgspec.json.Decoder(list[StockLine]).decode


@dataclass(frozen=True, slots=True)
class Intent:
    """What a checkout is about to hold, and so what to give back if it never becomes an order."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    lines: list[StockLine]
    discount_code: str | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Intent:
        return cls(row["order_id"], row["user_id"], _decode_lines(row["lines"]), row["discount_code"])

    def aborted(self, why: str) -> CheckoutAborted:
        """The event that frees a held discount usage (and the stock, by order id) of this checkout."""
        return CheckoutAborted(
            order_id=self.order_id,
            user_id=self.user_id,
            reason=why,
            items=self.lines,
            discount_code=self.discount_code,
        )


class Journal:
    """Records intents through a small pool of its own.

    The checkout's connection is inside its transaction (holding the cart's lock and the
    Idempotency-Key claim) when the intent must already be committed. A second connection from the
    same pool could deadlock: every connection held by a checkout waiting for one more. These
    connections are only ever held for one INSERT, so a wait for one always ends.
    """

    def __init__(self, pool: asyncpg.Pool, wait: float) -> None:
        self.pool = pool
        self.wait = wait  # seconds a checkout may wait for a connection (then: 503)

    async def record(self, intent: Intent) -> None:
        async with self.pool.acquire(timeout=self.wait) as conn:
            await conn.execute(
                store.RECORD_INTENT,
                intent.order_id,
                intent.user_id,
                _encode_lines(intent.lines).decode(),
                intent.discount_code,
            )


@contextlib.asynccontextmanager
async def _journal(deps: Deps) -> AsyncIterator[Journal]:
    pool = await db.pool_for(deps.settings, min_size=1, max_size=JOURNAL_CONNECTIONS)
    try:
        yield Journal(pool, OrderConfig.of(deps.settings).deadline)
    finally:
        await db.close(pool)


JOURNAL = Resource("journal", _journal)
"""The journal's pool exists before the first checkout and closes at stop."""


async def compensate(
    conn: asyncpg.Connection,
    downstream: Downstream,
    intent: Intent,
    why: str,
    *,
    stock_held: bool,
    discount_held: bool,
) -> None:
    """Give back what a live checkout holds and close its intent; never raises.

    `stock_held`/`discount_held`: whether each may be held (a call that failed may still have happened).
    """
    try:
        async with conn.transaction():
            if not await conn.fetchval(store.LOCK_OPEN_INTENT, intent.order_id):
                # Its order was created after all (the commit's answer was lost), or the recovery job
                # compensated it: either way there is nothing left to undo here.
                return
            await _undo(conn, downstream, [intent], why, stock_held=stock_held, discount_held=discount_held)
    except Exception as exc:
        # order_db unreachable: the intent stays open and the recovery job undoes it once it is back.
        log.error(
            "checkout compensation deferred to the recovery job",
            extra={"orderId": str(intent.order_id), "error": repr(exc)},
        )


async def recover(conn: asyncpg.Connection, downstream: Downstream, older_than: float) -> list[uuid.UUID]:
    """Compensate up to `RECOVERY_BATCH` intents open for more than `older_than` seconds; their orders."""
    async with conn.transaction():
        rows = await conn.fetch(store.OVERDUE_INTENTS, older_than, RECOVERY_BATCH)
        intents = [Intent.of(row) for row in rows]
        # Nothing is known of what they got to hold: assume everything.
        await _undo(conn, downstream, intents, "checkout abandoned", stock_held=True, discount_held=True)
    if intents:
        recovered.inc(len(intents))
        log.warning(
            "compensated abandoned checkouts",
            extra={"count": len(intents), "orderIds": [str(i.order_id) for i in intents]},
        )
    return [i.order_id for i in intents]


async def prune(conn: asyncpg.Connection) -> None:
    await conn.execute(store.PRUNE_INTENTS, KEEP_HOURS)


async def _undo(
    conn: asyncpg.Connection,
    downstream: Downstream,
    intents: list[Intent],
    why: str,
    *,
    stock_held: bool,
    discount_held: bool,
) -> None:
    """In the caller's transaction, holding the intents' rows: release their stock now, record
    `checkout.aborted` for those that still owe an undo, and mark them compensated."""
    if not intents:
        return
    if stock_held:
        released = await asyncio.gather(*(_release_stock(downstream, i.order_id, why) for i in intents))
    else:
        released = [True] * len(intents)
    owed = [i for i, done in zip(intents, released, strict=True) if discount_held or not done]
    await publish(conn, *(i.aborted(why) for i in owed))
    await conn.execute(store.INTENTS_COMPENSATED, [i.order_id for i in intents])


async def _release_stock(downstream: Downstream, order_id: uuid.UUID, why: str) -> bool:
    request = inventory_pb2.ReleaseStockRequest(order_id=str(order_id), reason=why)
    try:
        await downstream.inventory.ReleaseStock(request, timeout=downstream.config.deadline)
    except grpc.aio.AioRpcError as exc:
        # `checkout.aborted` makes svc_inventory release it when it reads the event.
        log.warning("stock release failed", extra={"orderId": str(order_id), "code": exc.code().name})
        return False
    return True
