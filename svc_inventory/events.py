"""Events svc_inventory publishes (inventory.exchange) and the fields it reads of those it consumes."""

from __future__ import annotations

import uuid

import asyncpg

from kit.app import Deps
from kit.bus import Event, Handler
from svc_inventory import lua, store
from svc_inventory.store import PRODUCT_LEVEL


class StockReserved(Event):
    """One line of a new reservation (the reservation id is the order id)."""

    routing_key = "inventory.reserved"
    reservation_id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    quantity: int


class StockReleased(Event):
    """One line of stock given back: reason "released" (cancelled, failed), "expired", or "returned"
    (a sale whose order was cancelled after it was confirmed)."""

    routing_key = "inventory.released"
    reservation_id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    quantity: int
    reason: str


class LowStockAlert(Event):
    """Availability fell to the threshold (once per crossing; re-armed when it rises above)."""

    routing_key = "inventory.low-stock"
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    current_stock: int
    threshold: int
    # Whom svc_notify tells; None for a product svc_product never announced to us.
    seller_id: uuid.UUID | None


class OrderConfirmed(Event):
    routing_key = "order.confirmed"
    order_id: uuid.UUID


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    reason: str = ""


class ProductCreated(Event):
    routing_key = "product.created"
    product_id: uuid.UUID
    seller_id: uuid.UUID


class ProductDeleted(Event):
    routing_key = "product.deleted"
    product_id: uuid.UUID
    seller_id: uuid.UUID


def wire_variant(variant_id: uuid.UUID) -> uuid.UUID | None:
    """The product-level row has no variant on the wire."""
    return None if variant_id == PRODUCT_LEVEL else variant_id


async def order_confirmed(conn: asyncpg.Connection, event: OrderConfirmed, deps: Deps) -> None:
    """The order is paid: its reservation becomes a sale (only from RESERVED, so repeats do nothing)."""
    from svc_inventory import engine  # engine imports the events above

    await engine.of(deps).commit(event.order_id)


async def order_cancelled(conn: asyncpg.Connection, event: OrderCancelled, deps: Deps) -> None:
    """The order is cancelled: its held reservation, or its sale, gives its units back (once)."""
    from svc_inventory import engine

    await engine.of(deps).cancel(event.order_id, event.reason[:200] or "order cancelled")


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
    ProductCreated.routing_key: product_created,
    ProductDeleted.routing_key: product_deleted,
}
