"""svc_inventory: stock levels and reservations; REST for people, gRPC (rpc.py) for services."""

from __future__ import annotations

import uuid
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import NotFound, invalid
from kit.grpc import GrpcServer
from kit.http import JSON, body_of, page_of, paging, path_uuid
from kit.identity import require_role
from kit.openapi import doc, listing, page, uuid_param
from svc_inventory import engine, events, rpc, store, wire
from svc_inventory.config import InventoryConfig
from svc_inventory.schemas import Level, SetStock


def _uuid(raw: str | None, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        raise invalid(field, f"{field} must be a UUID") from None


MISSING = "Product not found in inventory"


async def _level(request: Request, product_id: uuid.UUID, variant_id: uuid.UUID | None) -> Level:
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(store.LEVEL, product_id, variant_id)
    if row is None:
        raise NotFound("Product not found in inventory")
    return Level(**dict(row), variant_id=variant_id)


@doc(
    "A product's stock: available, reserved and on hand (all variants, or `?variantId=`)",
    response=Level,
    params=(uuid_param("variantId", "Only this variant's stock"),),
)
async def get_level(request: Request) -> Response:
    product_id = path_uuid(request, "productId", MISSING)
    raw = request.query_params.get("variantId")
    return JSON(await _level(request, product_id, _uuid(raw, "variantId") if raw else None))


@doc(
    "Set a product's on-hand stock and low-stock threshold (its Seller or an Admin)",
    body=SetStock,
    response=Level,
    auth="Seller",
)
async def set_level(request: Request) -> Response:
    who = require_role(request, "Seller", "Admin")
    product_id = path_uuid(request, "productId", MISSING)
    body = await body_of(request, SetStock)
    variant_id = body.variant_id or store.PRODUCT_LEVEL
    await engine.INVENTORY.of(deps(request)).set_stock(
        who, product_id, variant_id, body.quantity, body.low_stock_threshold
    )
    return JSON(await _level(request, product_id, body.variant_id))


@doc(
    "Stock rows at or below their low-stock threshold, lowest first",
    response=page(Level),
    auth="Admin",
    params=listing(Level),
)
async def low_stock(request: Request) -> Response:
    require_role(request, "Admin")
    page = paging(request.query_params, Level)
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(store.LOW_STOCK, page.page_size, page.offset)
        total = rows[0]["total"] if rows else await conn.fetchval(store.COUNT_LOW_STOCK)
    items = [
        Level(
            **{k: v for k, v in dict(r).items() if k not in ("total", "variant_id")},
            variant_id=wire.wire_variant(r["variant_id"]),
        )
        for r in rows
    ]
    return JSON(page_of(items, page, total))


routes = [
    Route("/api/inventory/low-stock", low_stock, methods=["GET"]),
    Route("/api/inventory/{productId}", get_level, methods=["GET"]),
    Route("/api/inventory/{productId}", set_level, methods=["PUT"]),
]

grpc_server = GrpcServer("inventory", rpc.register)
service = Service(
    "inventory",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    resources=[engine.INVENTORY],
    jobs=[engine.background, grpc_server],
    ready_checks={"stock": engine.stock_loaded},
    settings=InventoryConfig,
)
app = make_app(service)
