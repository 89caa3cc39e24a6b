"""svc_order's background jobs (`Service.jobs`: started with the process, cancelled at shutdown), each a
`kit.lifecycle.every` round.

Each worker process runs them; that is safe: the sweeper and the intent recovery take their rows with
SKIP LOCKED, and forgetting old keys and intents twice forgets nothing more.
"""

from __future__ import annotations

from kit.app import Deps
from kit.lifecycle import every
from svc_order import idempotency, intents, workflow
from svc_order.config import OrderConfig
from svc_order.downstream import CLIENTS

CLEANUP_SECONDS = 600.0


async def sweeper(deps: Deps) -> None:
    """Cancel PENDING orders past their payment window (`ORDER_PAYMENT_WINDOW_SECONDS`), releasing their
    stock and discount usage through `order.cancelled`; every `ORDER_SWEEP_SECONDS`."""

    async def sweep() -> None:
        async with deps.db.acquire() as conn:
            while await workflow.expire_unpaid(conn) == workflow.SWEEP_BATCH:
                pass

    await every(OrderConfig.of(deps.settings).sweep_every, sweep, name="sweeper")


async def intent_recovery(deps: Deps) -> None:
    """Compensate checkouts that died between recording their intent and creating their order (a
    crash, a kill): their stock and discount usage go back. At start, then every
    `ORDER_INTENT_RECOVERY_SECONDS`, for intents open longer than the deadline plus
    `ORDER_INTENT_GRACE_SECONDS`."""
    config = OrderConfig.of(deps.settings)

    async def recover() -> None:
        async with deps.db.acquire() as conn:
            clients = CLIENTS.of(deps)
            while len(await intents.recover(conn, clients, config.intent_overdue)) == intents.RECOVERY_BATCH:
                pass

    await every(config.intent_recovery_every, recover, name="intent-recovery")


async def cleanup(deps: Deps) -> None:
    """Forget Idempotency-Keys older than `ORDER_IDEMPOTENCY_HOURS` and compensated intents a day old."""
    hours = OrderConfig.of(deps.settings).idempotency_hours

    async def forget() -> None:
        async with deps.db.acquire() as conn:
            await idempotency.forget_old(conn, hours)
            await intents.prune(conn)

    await every(CLEANUP_SECONDS, forget, name="cleanup")
