"""`python -m shop.migrate`: prepare every service of the map (`svc_<name>` for each with a database)
before anything starts.

Creates and migrates each database, and declares the exchanges and every consumer's queues, so that an
event published by one service before another has started is kept for it. `make run` calls it first
(the migration Job in Kubernetes, the `migrate` service in compose); each service also does both on
start, so running it again is harmless.

`python -m shop.migrate --wait <service>` is the other half, for a process that must not start before
that has happened (an init container in deploy/k8s): it returns once the service's migrations are all
applied and its queues exist, and says what it is still waiting for every few seconds meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging

import aiormq
import asyncpg

from kit import bus, db, logs, settings
from kit.app import Service, open_database
from shop.map import services_with_a_database

log = logging.getLogger(__name__)
WAIT_INTERVAL = 2.0


def service(name: str) -> Service:
    """The `Service` that `svc_<name>/app.py` declares."""
    found: Service = importlib.import_module(f"svc_{name}.app").service
    return found


def services() -> list[Service]:
    """Every service of the map (each one with a database)."""
    return [service(spec.name) for spec in services_with_a_database()]


async def main() -> None:
    found = services()
    for each in found:
        pool = await open_database(each, settings.load(each.name).direct())
        await pool.close()
    consumers = {s.name: list(s.handlers) for s in found if s.uses_broker}
    await bus.declare_topology(settings.load("edge").amqp_url, consumers)


async def _missing_migrations(service: Service, config: settings.Settings) -> list[str]:
    if config.database_url is None:
        return []
    wanted = [version for version, _ in db.migration_files(*filter(None, [service.migrations]))]
    done: set[str] = set()
    try:
        conn = await asyncpg.connect(config.database_direct_url, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        conn = None
    if conn is not None:
        try:
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        except asyncpg.UndefinedTableError:
            pass
        finally:
            await conn.close()
    return [f"migration {version}" for version in wanted if version not in done]


async def _missing_queues(service: Service, config: settings.Settings) -> list[str]:
    if not service.uses_broker or not service.handlers:
        return []
    connection = await aiormq.connect(config.amqp_url)
    missing: list[str] = []
    try:
        for key in service.handlers:
            queue = bus.Queues(service.name, key).queue
            # A passive declare only asks; a missing queue closes the channel, so one channel each.
            channel = await connection.channel()
            try:
                await channel.queue_declare(queue, passive=True)
                await channel.close()
            except aiormq.exceptions.ChannelNotFoundEntity:
                missing.append(f"queue {queue}")
    finally:
        await connection.close()
    return missing


async def missing(service: Service, config: settings.Settings) -> list[str]:
    """What `python -m shop.migrate` has not done yet for `service` (empty once it has)."""
    return [*await _missing_migrations(service, config), *await _missing_queues(service, config)]


async def wait(service: Service, config: settings.Settings, interval: float = WAIT_INTERVAL) -> None:
    """Return once `service` is prepared; servers not up yet count as not prepared."""
    while True:
        try:
            waiting = await missing(service, config)
        except (OSError, asyncpg.PostgresError, aiormq.exceptions.AMQPError) as exc:
            waiting = [f"servers: {exc!r}"]
        if not waiting:
            log.info("prepared", extra={"target": service.name})
            return
        log.info("waiting for the migration", extra={"target": service.name, "missing": waiting[:5]})
        await asyncio.sleep(interval)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m shop.migrate")
    parser.add_argument("--wait", metavar="SERVICE", help="only wait until SERVICE is prepared")
    args = parser.parse_args()
    logs.setup("migrate")
    if args.wait:
        asyncio.run(wait(service(args.wait), settings.load(args.wait)))
    else:
        asyncio.run(main())
