from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

from kit import bus, db, settings
from kit.app import Service, open_database
from shop import migrate
from tests.conftest import NAMESPACE, POSTGRES_URL


def _service(tmp_path: Path) -> tuple[Service, settings.Settings]:
    (tmp_path / "001_init.sql").write_text("CREATE TABLE parcel (id int PRIMARY KEY)")
    name = f"waiter{uuid.uuid4().hex[:8]}"

    async def on_order_created(conn: object, event: object) -> None:
        return None

    service = Service(name, routes=[], migrations=tmp_path, handlers={"order.created": on_order_created})
    url = f"{POSTGRES_URL}/{name}_{NAMESPACE}"
    config = dataclasses.replace(settings.load("order"), database_url=url, database_direct_url=url)
    return service, config


async def test_missing_names_the_migrations_and_queues_not_prepared_yet(tmp_path: Path) -> None:
    service, config = _service(tmp_path)
    waiting = await migrate.missing(service, config)
    assert "migration 001_init" in waiting
    assert f"queue {service.name}.order.created" in waiting


async def test_wait_returns_once_the_migration_has_run(tmp_path: Path) -> None:
    service, config = _service(tmp_path)
    assert config.database_url
    waiter = asyncio.create_task(migrate.wait(service, config, interval=0.05))
    # Nothing prepared: still waiting after several of its checks.
    done, _ = await asyncio.wait({waiter}, timeout=0.3)
    assert not done
    pool = await open_database(service, config)
    await pool.close()
    await bus.declare_topology(config.amqp_url, {service.name: ["order.created"]})
    await asyncio.wait_for(waiter, 5)
    assert await migrate.missing(service, config) == []
    await db.drop_database(config.database_url)
