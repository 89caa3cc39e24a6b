"""The events on svc_inventory's wire: those it publishes (inventory.exchange) and the fields it reads of
those it consumes; the engine builds them, events.py handles them, so neither imports the other."""

from __future__ import annotations

import uuid

from kit.bus import Event
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


class AvailabilityChanged(Event):
    """A product's availability crossed zero (our addition to the contract): `available` is whether a
    unit of it (its own or any variant's) can be bought now. Once per crossing, in the transaction that
    made it; `occurredAt` (the database's clock, in the order of the crossings) orders them."""

    routing_key = "inventory.availability-changed"
    product_id: uuid.UUID
    available: bool


class OrderConfirmed(Event):
    routing_key = "order.confirmed"
    order_id: uuid.UUID


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    reason: str = ""


class CheckoutAborted(Event):
    routing_key = "checkout.aborted"
    order_id: uuid.UUID
    reason: str


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
