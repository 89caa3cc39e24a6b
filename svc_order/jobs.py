"""svc_order's background jobs (`Service.jobs`: started with the process, cancelled at shutdown).

Each worker process runs them; that is safe: the sweeper takes its orders with SKIP LOCKED, and
forgetting old keys twice forgets nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from kit.app import Deps
from svc_order import idempotency, workflow
from svc_order.config import OrderConfig

log = logging.getLogger(__name__)

_TRANSIENT = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
KEY_CLEANUP_SECONDS = 600.0


async def _every(seconds: float, work: Callable[[], Awaitable[None]], name: str) -> None:
    """Run `work` every `seconds`, forever; an outage is logged and the next round tries again."""
    while True:
        try:
            await work()
        except _TRANSIENT as exc:
            log.warning("background job failed, retrying", extra={"job": name, "error": repr(exc)})
        await asyncio.sleep(seconds)


async def sweeper(deps: Deps) -> None:
    """Cancel PENDING orders past their payment window (`ORDER_PAYMENT_WINDOW_SECONDS`), releasing their
    stock and discount usage through `order.cancelled`; every `ORDER_SWEEP_SECONDS`."""

    async def sweep() -> None:
        async with deps.db.acquire() as conn:
            while await workflow.expire_unpaid(conn) == workflow.SWEEP_BATCH:
                pass

    await _every(OrderConfig.of(deps.settings).sweep_every, sweep, "sweeper")


async def key_cleanup(deps: Deps) -> None:
    """Forget Idempotency-Keys older than `ORDER_IDEMPOTENCY_HOURS`."""
    hours = OrderConfig.of(deps.settings).idempotency_hours

    async def forget() -> None:
        async with deps.db.acquire() as conn:
            await idempotency.forget_old(conn, hours)

    await _every(KEY_CLEANUP_SECONDS, forget, "key-cleanup")
