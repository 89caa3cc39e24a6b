"""Test-wide set-up: a private corner of the shared servers, so tests never disturb a dev stack.

- PostgreSQL: every service's database gets a `_test` suffix, dropped and re-created per run.
- Redis: database 15, emptied per run.
- RabbitMQ: the `shop_test` virtual host, deleted and re-created per run (fresh queues and exchanges).
- Ports: the contract's ports plus 10000, so the end-to-end stack runs beside `make run`.

The reset happens before the first test that uses the servers; a module of tests that need none says
so (`pytestmark = pytest.mark.offline`), and a run of those alone touches no server.

Two test runs at once on one machine (two engineers, or CI beside a developer) each set their own
`SHOP_TEST_NS` (suffix of databases and vhost), `SHOP_TEST_REDIS_DB` and `SHOP_TEST_PORT_OFFSET`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator

import aiormq
import pytest

from edge import loader
from kit import settings
from shop.map import SERVICES

pytest_plugins = ["tests.watchdog"]

NAMESPACE = os.environ.get("SHOP_TEST_NS", "test")
TEST_VHOST = f"shop_{NAMESPACE}"
PORT_OFFSET = int(os.environ.get("SHOP_TEST_PORT_OFFSET", "10000"))
REDIS_DB = int(os.environ.get("SHOP_TEST_REDIS_DB", "15"))
# The server the test databases live on: the shared one unless `POSTGRES_URL` names another.
POSTGRES_URL = os.environ.get("POSTGRES_URL", settings.POSTGRES_URL).rstrip("/")


def _test_environment() -> dict[str, str]:
    env = {
        "SHOP_ENV": "test",
        "LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}",
        "SMTP_PORT": str(1025 + PORT_OFFSET),
        "EDGE_ADMIN_PORT": str(9010 + PORT_OFFSET),
    }
    for spec in SERVICES.values():
        name = spec.name.upper()
        env[f"{name}_PORT"] = str(spec.http_port + PORT_OFFSET)
        if spec.grpc_port:
            env[f"{name}_GRPC_PORT"] = str(spec.grpc_port + PORT_OFFSET)
        if spec.database:
            env[f"{name}_DATABASE_URL"] = f"{POSTGRES_URL}/{spec.database}_{NAMESPACE}"
    return env


os.environ.update(_test_environment())
# The edge's modules imported by any test come from its compiled build, as `python -m edge` runs them
# (unless EDGE_NATIVE=off: `make test` runs the edge's tests both ways). Here, not in a hook: pytest
# imports the conftests of the folders it is given (tests/edge's imports the edge) before any hook.
loader.use_native(os.environ.get("EDGE_NATIVE", "auto"))


def _reset_vhost() -> None:
    """A fresh virtual host: no queue or message from an earlier run survives."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "-q", "delete_vhost", TEST_VHOST], capture_output=True, check=False)
    subprocess.run([ctl, "-q", "add_vhost", TEST_VHOST], capture_output=True, check=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )


async def _reset_databases() -> None:
    from kit import db

    for spec in SERVICES.values():
        if spec.database:
            await db.drop_database(settings.database_url(spec.database))


_USES_SERVERS = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_USES_SERVERS] = any(item.get_closest_marker("offline") is None for item in items)


def uses_servers(config: pytest.Config) -> bool:
    """Whether a test of this run uses the shared servers (is not marked `offline`)."""
    return config.stash.get(_USES_SERVERS, True)


async def empty_corner() -> None:
    """Empty this run's corner of the shared servers (the namespace's virtual host, databases and Redis
    database): also for perf/'s A/B runs, which a corner's leftovers (an earlier run's queued mails,
    its unpaid orders expiring) would measure instead of the trees."""
    _reset_vhost()
    await _reset_databases()
    from redis.asyncio import Redis

    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture(scope="session", autouse=True)
async def fresh_servers(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The run's corner of the shared servers, emptied before anything starts; unless every test of the
    run is marked `offline` (needs no server): a run of those alone resets, starts and drops nothing."""
    if uses_servers(request.config):
        await empty_corner()
    yield


@pytest.fixture
async def amqp() -> AsyncIterator[aiormq.abc.AbstractChannel]:
    """A raw channel on the test vhost, for tests that look at queues directly."""
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    channel = await connection.channel()
    yield channel
    await connection.close()
