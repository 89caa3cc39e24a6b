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
import time
from collections.abc import Awaitable, Callable

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit import db
from kit.app import Deps
from kit.cancel import raise_if_cancelled
from kit.errors import ServiceUnavailable
from svc_inventory import lua
from svc_inventory.levels import StockLevels
from svc_inventory.reconciliation import Reconciliation
from svc_inventory.reservations import Reservations
from svc_inventory.settlement import Settlement

log = logging.getLogger(__name__)


class Inventory(Reservations, Settlement, StockLevels, Reconciliation):
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
        super().__init__(pool, redis, hold_seconds, batch, writers)
        self.reconcile_seconds = reconcile_seconds

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
                raise_if_cancelled()
                log.warning("inventory background step failed", extra={"error": repr(exc)})
            await asyncio.sleep(seconds)

    async def _maintain(self) -> None:
        """Rebuild as soon as Redis lost its state; reconcile and sweep PostgreSQL now and then."""
        last_reconcile = last_sweep = 0.0
        while True:
            # Not wait_for: on 3.11 it can swallow a cancellation that meets its timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._kick.wait()
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
                raise_if_cancelled()
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
