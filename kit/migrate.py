"""`python -m kit.migrate`: prepare every `svc_*` service of the repository before anything starts.

Creates and migrates each database, and declares the exchanges and every consumer's queues, so that an
event published by one service before another has started is kept for it. `make run` calls it first;
each service also does both on start, so running it again is harmless.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

from kit import bus, logs, settings
from kit.app import Service, open_database

ROOT = Path(__file__).resolve().parent.parent


def services() -> list[Service]:
    return [
        importlib.import_module(f"{p.parent.name}.app").service for p in sorted(ROOT.glob("svc_*/app.py"))
    ]


async def main() -> None:
    found = services()
    for service in found:
        if settings.SERVICES[service.name].database:
            pool = await open_database(service, settings.load(service.name).direct())
            await pool.close()
    consumers = {s.name: list(s.handlers) for s in found if s.uses_broker}
    await bus.declare_topology(settings.load("edge").amqp_url, consumers)


if __name__ == "__main__":
    logs.setup("migrate")
    asyncio.run(main())
