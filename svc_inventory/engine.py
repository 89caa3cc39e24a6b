"""Reservations: Redis screens them in front, PostgreSQL records them behind, and the two stay in step.

The rules that make it never oversell and never leak a unit:

1. Redis availability only goes down before PostgreSQL records the change (a reservation, a lower
   on-hand) and only goes up after PostgreSQL committed it (a release, an expiry, a higher on-hand).
   A failure in between leaves Redis showing less than there is (undersold, repaired by the
   reconciliation), never more.
2. Every writer holds the stock lock shared from its Redis step until its PostgreSQL commit; a rebuild
   or reconciliation holds it exclusively, so it sees both stores at rest and can safely overwrite
   Redis from PostgreSQL.
3. Reservations are batched: concurrent ReserveStock calls share one Redis script call (each order in
   it all or nothing for all its lines, in turn) and one PostgreSQL transaction (group commit), so a
   hot product costs one row update per batch instead of one locked transaction per buyer.
4. PostgreSQL's CHECK (reserved <= on_hand) refuses an oversold unit even if everything above failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit import db
from kit.app import Deps, Resource
from kit.errors import ServiceUnavailable
from kit.lifecycle import every
from svc_inventory import lua
from svc_inventory.config import InventoryConfig
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
        self._reconciled = 0.0  # when `sync` last ran (time.monotonic)

    # -- background work ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The process's background work, until cancelled: the batcher; expired reservations swept from
        Redis every 0.2 s and from PostgreSQL every 5 s; Redis rebuilt as soon as it lost its state (a
        kick) and reconciled every `reconcile_seconds`."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.run_batches())
            group.create_task(every(0.2, self.sweep, name="reservation-sweep"))
            group.create_task(every(5.0, self.sweep_database, name="reservation-sweep-db"))
            group.create_task(every(1.0, self._resync, name="stock-reconcile", wake=self._kick))

    async def _resync(self) -> None:
        """Rebuild Redis when it lost its state, and reconcile it with PostgreSQL when that is due."""
        now = time.monotonic()
        if not await self.redis.exists(lua.LOADED) or now - self._reconciled >= self.reconcile_seconds:
            await self.sync()
            self._reconciled = now


@contextlib.asynccontextmanager
async def _inventory(deps: Deps) -> AsyncIterator[Inventory]:
    """The process's Inventory from its settings, with Redis loaded when it is up."""
    assert deps.redis is not None
    config = deps.settings
    own = InventoryConfig.of(config)
    pool = deps.db
    if config.database_direct_url != config.database_url:
        # The stock lock is a session advisory lock held across statements: with a transaction pooler
        # (PgBouncer) in front, the engine connects straight to the server instead.
        pool = await db.pool_for(config, direct=True)
    try:
        inventory = Inventory(
            pool,
            deps.redis,
            hold_seconds=own.hold_seconds,
            reconcile_seconds=own.reconcile_seconds,
        )
        try:
            await inventory.sync()  # load Redis before the first call, when it is up
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable at start; loading it once it is back", extra={"error": repr(exc)})
        yield inventory
    finally:
        if pool is not deps.db:
            await db.close(pool)


INVENTORY = Resource("inventory", _inventory)


async def background(deps: Deps) -> None:
    """`Service.jobs` entry: the Inventory's batcher, sweeps and reconciliation."""
    await INVENTORY.of(deps).run()


async def stock_loaded(deps: Deps) -> None:
    """`Service.ready_checks`: not ready while Redis lacks the stock (flushed or restarted, and rebuilt
    from PostgreSQL meanwhile): reservations answer UNAVAILABLE until then, so gRPC health says so too."""
    assert deps.redis is not None
    if not await deps.redis.exists(lua.LOADED):
        raise ServiceUnavailable("Stock is being reloaded")
