"""How svc_inventory handles the events it consumes (their shapes are in wire.py)."""

from __future__ import annotations

import asyncpg

from kit.app import Deps
from kit.bus import Handler
from svc_inventory import engine, lua, store
from svc_inventory.wire import (
    CheckoutAborted,
    OrderCancelled,
    OrderConfirmed,
    ProductCreated,
    ProductDeleted,
)


async def order_confirmed(conn: asyncpg.Connection, event: OrderConfirmed, deps: Deps) -> None:
    """The order is paid: its reservation becomes a sale (only from RESERVED, so repeats do nothing)."""
    await engine.INVENTORY.of(deps).commit(event.order_id)


async def order_cancelled(conn: asyncpg.Connection, event: OrderCancelled, deps: Deps) -> None:
    """The order is cancelled: its held reservation, or its sale, gives its units back (once)."""
    await engine.INVENTORY.of(deps).cancel(event.order_id, event.reason[:200] or "order cancelled")


async def checkout_aborted(conn: asyncpg.Connection, event: CheckoutAborted, deps: Deps) -> None:
    """A checkout that never became an order: the reservation it may hold is released (once). Its
    ReleaseStock usually did it already; this is the undo when svc_inventory could not be reached."""
    await engine.INVENTORY.of(deps).release(event.order_id, event.reason[:200] or "checkout aborted")


async def product_created(conn: asyncpg.Connection, event: ProductCreated, deps: Deps) -> None:
    """Remember who sells the product (who may set its stock); it starts with nothing on hand."""
    await conn.execute(store.UPSERT_PRODUCT, event.product_id, event.seller_id)
    await conn.execute(store.INSERT_PRODUCT_ROW, event.product_id)
    assert deps.redis is not None
    await deps.redis.delete(lua.gone_key(event.product_id))


async def product_deleted(conn: asyncpg.Connection, event: ProductDeleted, deps: Deps) -> None:
    """A deleted product's stock may no longer be reserved (held reservations still settle)."""
    await conn.execute(store.DELETE_PRODUCT, event.product_id, event.seller_id)
    assert deps.redis is not None
    await deps.redis.set(lua.gone_key(event.product_id), 1)


handlers: dict[str, Handler] = {
    OrderConfirmed.routing_key: order_confirmed,
    OrderCancelled.routing_key: order_cancelled,
    CheckoutAborted.routing_key: checkout_aborted,
    ProductCreated.routing_key: product_created,
    ProductDeleted.routing_key: product_deleted,
}
