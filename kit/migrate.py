"""`python -m kit.migrate svc_auth svc_notify ...`: create and migrate each service's database.

`make run` calls it before starting the stack; each service also does it on start, so this step only
makes the first start quicker and reports a broken migration before anything listens.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from kit import logs, settings
from kit.app import Service, open_database


async def migrate(modules: list[str]) -> None:
    for module in modules:
        service: Service = importlib.import_module(f"{module}.app").service
        pool = await open_database(service, settings.load(service.name))
        await pool.close()


if __name__ == "__main__":
    logs.setup("migrate")
    asyncio.run(migrate(sys.argv[1:]))
