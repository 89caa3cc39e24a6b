"""The fault suite's world: PostgreSQL, Redis and RabbitMQ servers of its own (never the shared ones, so
it may restart, stop and flush them), the whole stack against them under `kit.supervise`, and a shop
client through the edge. `make chaos` runs it; each test prints the figure it measured."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kit import settings
from shop.map import SERVICES
from tests.conftest import PORT_OFFSET
from tests.faults.shop import Shop, shop_of
from tests.servers import OwnPostgres, OwnRabbitMQ, own_postgres, own_rabbitmq, own_redis
from tests.stack import OPEN_LIMITS, Stack, running_stack

pytestmark = pytest.mark.faults


class Servers:
    def __init__(self, postgres: OwnPostgres, redis_url: str, rabbitmq: OwnRabbitMQ) -> None:
        self.postgres = postgres
        self.redis_url = redis_url
        self.rabbitmq = rabbitmq

    def environment(self, corner: int = 0, amqp_url: str | None = None) -> dict[str, str]:
        """The stack's environment on these servers. A second stack beside the first takes another
        `corner`: databases with a suffix, a Redis database and ports of its own, and `amqp_url` (a
        virtual host of its own, or its consumers would compete with the first stack's)."""
        suffix = f"_{corner}" if corner else ""
        env = {
            **OPEN_LIMITS,
            "REDIS_URL": f"{self.redis_url.rsplit('/', 1)[0]}/{corner}",
            "AMQP_URL": amqp_url or self.rabbitmq.url,
        }
        for spec in SERVICES.values():
            name = spec.name.upper()
            if spec.database:
                env[f"{name}_DATABASE_URL"] = f"{self.postgres.url}/{spec.database}{suffix}"
            if corner:
                config = settings.load(spec.name)
                env[f"{name}_PORT"] = str(config.http_port + 300 * corner)
                if config.grpc_port:
                    env[f"{name}_GRPC_PORT"] = str(config.grpc_port + 300 * corner)
        if corner:
            for name in ("SMTP_PORT", "EDGE_ADMIN_PORT"):
                env[name] = str(int(os.environ[name]) + 300 * corner)
        # Orphaned checkouts are recovered within seconds; the suite waits for them.
        env["ORDER_INTENT_RECOVERY_SECONDS"] = "2"
        env["ORDER_INTENT_GRACE_SECONDS"] = "3"
        return env


@pytest.fixture(scope="session")
async def servers() -> AsyncIterator[Servers]:
    # Beside the stack's own ports (the contract's plus the offset): nothing else of ours is there.
    async with (
        own_postgres(5432 + PORT_OFFSET) as postgres,
        own_redis(6379 + PORT_OFFSET) as redis_url,
        own_rabbitmq(5672 + PORT_OFFSET) as rabbitmq,
    ):
        yield Servers(postgres, redis_url, rabbitmq)


@pytest.fixture(scope="session")
def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("fault-stack")
    with running_stack(servers.environment(), logs) as running:
        yield running


@pytest.fixture(scope="session")
async def shop(stack: Stack) -> AsyncIterator[Shop]:
    async with shop_of(stack) as shopper:
        yield shopper
