"""`python -m kit.migrate`: create and migrate the database of every `svc_*` service of the repository.

`make run` calls it before starting the stack; each service also does it on start, so this step only
reports a broken migration before anything listens.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

from kit import logs, settings
from kit.app import Service, open_database

ROOT = Path(__file__).resolve().parent.parent


async def main() -> None:
    for app_module in sorted(ROOT.glob("svc_*/app.py")):
        service: Service = importlib.import_module(f"{app_module.parent.name}.app").service
        if settings.SERVICES[service.name].database:
            pool = await open_database(service, settings.load(service.name))
            await pool.close()


if __name__ == "__main__":
    logs.setup("migrate")
    asyncio.run(main())
