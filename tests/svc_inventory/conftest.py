"""svc_inventory in-process (HTTP through httpx, gRPC on a free port), with real PostgreSQL and Redis."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from kit import settings
from kit.app import make_app
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc
from svc_inventory import engine
from svc_inventory.app import grpc_server, service
from svc_inventory.config import InventoryConfig
from svc_inventory.engine import Inventory
from tests.support import identity, patient_redis, serve_grpc

# The tests' own deadlines, raised from the services' defaults: what they check is that stock stays
# exact while thousands of calls race, not how fast one is answered. One process serves, calls and
# checks here (gRPC server and client, the Redis and PostgreSQL clients), and on a loaded machine it
# can take longer than kit.grpc.DEADLINE (2 s) to answer a call, or than kit.cache.connect's 0.5 s to
# read a Redis reply (which fails a whole reservation batch).
CALL_TIMEOUT = 20.0
_LOADED = settings.load("inventory", own=InventoryConfig)
CONFIG = dataclasses.replace(_LOADED, grpc_port=0, redis_url=patient_redis(_LOADED.redis_url))
ADMIN = identity("Admin", email="admin@shop.local")


class Stack(msgspec.Struct):
    http: httpx.AsyncClient
    stub: inventory_pb2_grpc.InventoryServiceStub
    db: asyncpg.Pool
    redis: Redis
    inventory: Inventory


@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    app = make_app(service, CONFIG)
    async with serve_grpc(app, grpc_server) as (http, ch):
        d = app.state.deps
        assert d.redis is not None
        yield Stack(http, inventory_pb2_grpc.InventoryServiceStub(ch), d.db, d.redis, engine.INVENTORY.of(d))


def seller_headers(seller: uuid.UUID) -> dict[str, str]:
    return identity("Seller", user_id=seller)


async def stocked(stack: Stack, on_hand: int, threshold: int = 0) -> uuid.UUID:
    """A new product, known to inventory, with `on_hand` units."""
    product_id = uuid.uuid4()
    response = await stack.http.put(
        f"/api/inventory/{product_id}",
        json={"quantity": on_hand, "lowStockThreshold": threshold},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    return product_id


def line(product_id: uuid.UUID, quantity: int = 1, variant_id: uuid.UUID | None = None) -> pb.StockLine:
    return pb.StockLine(product_id=str(product_id), variant_id=str(variant_id or ""), quantity=quantity)


async def reserve(
    stack: Stack, order_id: uuid.UUID, *lines: pb.StockLine, hold: int = 0
) -> pb.ReserveStockResponse:
    return await stack.stub.ReserveStock(
        pb.ReserveStockRequest(order_id=str(order_id), lines=list(lines), hold_seconds=hold),
        timeout=CALL_TIMEOUT,
    )


class Books(msgspec.Struct):
    """One product's numbers as PostgreSQL and Redis see them."""

    on_hand: int
    reserved: int
    redis_available: int | None
    active_lines: int
    committed_lines: int


async def books(stack: Stack, product_id: uuid.UUID) -> Books:
    row = await stack.db.fetchrow(
        "SELECT on_hand, reserved FROM stock WHERE product_id = $1 AND variant_id = $2",
        product_id,
        uuid.UUID(int=0),
    )
    sums = await stack.db.fetchrow(
        "SELECT coalesce(sum(l.quantity) FILTER (WHERE r.state = 'RESERVED'), 0) AS active,"
        " coalesce(sum(l.quantity) FILTER (WHERE r.state = 'COMMITTED'), 0) AS committed"
        " FROM reservation_lines l JOIN reservations r USING (order_id) WHERE l.product_id = $1",
        product_id,
    )
    raw = await stack.redis.get(f"inv:a:{product_id}:{uuid.UUID(int=0)}")
    return Books(
        row["on_hand"], row["reserved"], None if raw is None else int(raw), sums["active"], sums["committed"]
    )
