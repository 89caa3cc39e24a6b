"""svc_product running in-process on the test environment, callers of every role, and catalog builders.

svc_inventory does not run here: the stock's gRPC address is a port where nothing listens unless a
test starts the stand-in of `stand_in_inventory` on it.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiormq
import asyncpg
import grpc
import httpx
import msgspec
import pytest

from kit import settings
from kit.app import make_app
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc
from svc_product.app import service
from svc_product.config import ProductConfig
from tests.processes import free_port
from tests.support import identity, patient_redis, serve

INVENTORY_PORT = free_port()
# With the search index on (the default, whatever the environment says), so searches and suggestions go
# through it and, where a test asks for lists beyond active products or compares, through PostgreSQL too.
CONFIG = settings.load(
    "product",
    {
        **os.environ,
        "PRODUCT_INVENTORY_GRPC_URL": f"127.0.0.1:{INVENTORY_PORT}",
        "PRODUCT_STOCK_TTL": "1",
        "PRODUCT_SEARCH_INDEX": "1",
        # Its cache's subject is not a slow Redis, which a loaded machine can seem (tests.support).
        "REDIS_URL": patient_redis(os.environ["REDIS_URL"]),
    },
    own=ProductConfig,
)


@pytest.fixture(scope="package")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app(service, CONFIG)) as client:
        yield client


@pytest.fixture(scope="package")
async def db(client: httpx.AsyncClient) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to svc_product's test database, to look at what a request wrote."""
    assert CONFIG.database_url
    conn = await asyncpg.connect(CONFIG.database_url)
    yield conn
    await conn.close()


def seller() -> dict[str, str]:
    return identity("Seller")


def admin() -> dict[str, str]:
    return identity("Admin")


def user() -> dict[str, str]:
    return identity("User")


def word() -> str:
    """A word no other product has, so a search or a filter sees only the test's own products."""
    return f"zq{uuid.uuid4().hex[:10]}"


async def new_category(
    client: httpx.AsyncClient, parent_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    name = name or f"Category {word()}"
    response = await client.post(
        "/api/categories", json={"name": name, "slug": word(), "parentId": parent_id}, headers=admin()
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_brand(client: httpx.AsyncClient, name: str | None = None) -> dict[str, Any]:
    response = await client.post("/api/brands", json={"name": name or f"Brand {word()}"}, headers=admin())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def new_product(
    client: httpx.AsyncClient, category_id: str, owner: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"name": f"Product {word()}", "price": 100000, "categoryId": category_id, **fields}
    response = await client.post("/api/products", json=body, headers=owner or seller())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def loads(client: httpx.AsyncClient, document: str) -> float:
    """How many `document`s svc_product has read from PostgreSQL so far (its Prometheus counter)."""
    text = (await client.get("/metrics")).text
    match = re.search(rf'^shop_catalog_loads_total\{{document="{document}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def events_of(db: asyncpg.Connection, routing_key: str, product_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE routing_key = $1"
        " AND convert_from(payload, 'UTF8')::jsonb->>'productId' = $2 ORDER BY id",
        routing_key,
        product_id,
    )
    return [msgspec.json.decode(r["payload"]) for r in rows]


@pytest.fixture
async def category(client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh top-level category: lists filtered by it see only the test's products."""
    return await new_category(client)


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


async def bound(connection: aiormq.abc.AbstractConnection, queue: str) -> int:
    """Consumers on `queue` (0 when it does not exist yet); a passive declare of a missing queue closes
    its channel, hence a channel per look."""
    channel = await connection.channel()
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    await channel.close()
    return declared.consumer_count or 0


class StandInInventory(inventory_pb2_grpc.InventoryServiceServicer):
    """svc_inventory's `GetInventory` on the configured port: fixed rows per product, an optional delay,
    and the products of each call it answered."""

    def __init__(self) -> None:
        self.levels: dict[str, list[pb.StockLevel]] = {}
        self.delay = 0.0
        self.batches: list[list[str]] = []

    @property
    def calls(self) -> int:
        return len(self.batches)

    async def GetInventory(self, request: pb.GetInventoryRequest, context: object) -> pb.GetInventoryResponse:
        self.batches.append(list(request.product_ids))
        await asyncio.sleep(self.delay)
        return pb.GetInventoryResponse(
            items=[row for p in request.product_ids for row in self.levels.get(p, [])]
        )


@pytest.fixture
async def stand_in_inventory() -> AsyncIterator[StandInInventory]:
    inventory = StandInInventory()
    server = grpc.aio.server()
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(inventory, server)
    server.add_insecure_port(f"127.0.0.1:{INVENTORY_PORT}")
    await server.start()
    yield inventory
    await server.stop(None)
