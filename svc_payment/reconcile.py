"""Reconciliation: settle what the gateways' notifications did not, and resend unanswered refunds.

Every `PAYMENT_RECONCILE_SECONDS`, sessions opened more than `PAYMENT_RECONCILE_AFTER_MINUTES` ago
that no IPN settled are queried (VNPay querydr, MoMo and ZaloPay query) and settled through the same
`ledger.settle` as the IPN, so whichever comes first wins and the other changes nothing. Refunds left
PENDING (the gateway's answer was lost) are sent again with the same refund id, which the gateways
refund once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from kit.app import Deps
from kit.lifecycle import every
from svc_payment import ledger, store
from svc_payment.ledger import Payment, Refund
from svc_payment.providers import PROVIDERS

BATCH = 100
CONCURRENT_QUERIES = 8


async def settle_unsettled(deps: Deps, older_than: timedelta, recheck: timedelta = timedelta(0)) -> int:
    """Query the gateway about sessions left unsettled for `older_than`; return how many it settled."""
    gateways = PROVIDERS.of(deps)
    async with deps.db.acquire() as conn:
        rows = await conn.fetch(
            store.CLAIM_UNSETTLED, older_than.total_seconds(), recheck.total_seconds(), BATCH
        )
    limit = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def ask(payment: Payment) -> ledger.Notice | None:
        async with limit:
            return await gateways.query(payment)

    answers = await asyncio.gather(*(ask(Payment.of(row)) for row in rows))
    settled = 0
    for notice in answers:
        if notice is not None:
            async with deps.db.acquire() as conn, conn.transaction():
                outcome = await ledger.settle(conn, notice, "query")
            settled += outcome is ledger.Outcome.CONFIRMED
    return settled


async def send(deps: Deps, payment: Payment, refund: Refund) -> ledger.RefundResult:
    """Ask the gateway for `refund` and record its answer when it is final."""
    result = await PROVIDERS.of(deps).refund(payment, refund)
    if result.status != "PENDING":
        async with deps.db.acquire() as conn, conn.transaction():
            await ledger.finish_refund(conn, refund.id, result)
    return result


async def resend_refunds(deps: Deps, older_than: timedelta) -> None:
    async with deps.db.acquire() as conn:
        refunds = [
            Refund(**dict(r))
            for r in await conn.fetch(store.CLAIM_PENDING_REFUNDS, older_than.total_seconds(), BATCH)
        ]
        payments: dict[uuid.UUID, Payment] = {
            row["id"]: Payment.of(row)
            for row in await conn.fetch(store.PAYMENTS_BY_IDS, [r.payment_id for r in refunds])
        }
    for refund in refunds:
        await send(deps, payments[refund.payment_id], refund)


async def run(deps: Deps) -> None:
    """`Service.jobs` entry: a reconciliation round every `PAYMENT_RECONCILE_SECONDS`."""
    config = PROVIDERS.of(deps).config

    async def reconcile() -> None:
        await settle_unsettled(
            deps, timedelta(seconds=config.reconcile_after), timedelta(seconds=config.reconcile_every)
        )
        await resend_refunds(deps, timedelta(seconds=config.refund_retry_after))

    await every(config.reconcile_every, reconcile)
