"""Run a service's dev seed: the database created and migrated, then the service's own seed function.

Seeds are idempotent (a second run adds nothing) and publish through the outbox like any other change;
the service's relay sends those events once it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from kit import logs, settings
from kit.app import Service, open_database

log = logging.getLogger(__name__)


def run(service: Service, seed: Callable[[asyncpg.Pool, settings.Settings], Awaitable[None]]) -> None:
    config = settings.load(service.name)
    logs.setup(f"{service.name}-seed", config.log_level)

    async def main() -> None:
        pool = await open_database(service, config)
        try:
            await seed(pool, config)
        finally:
            await pool.close()

    asyncio.run(main())
