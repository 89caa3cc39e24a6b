"""Order events as svc_order publishes them (the interface fixed between svc_order and svc_payment)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from kit.bus import Event


class Item(msgspec.Struct, rename="camel"):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    product_name: str
    unit_price: float
    quantity: int
    seller_id: uuid.UUID | None


class OrderCreated(Event):
    """order.created exactly as the interface with svc_order fixes it."""

    routing_key = "order.created"
    order_id: uuid.UUID
    order_number: str
    user_id: uuid.UUID
    items: list[Item]
    subtotal: float
    discount_amount: float
    shipping_fee: float
    total_amount: float
    currency: str
    payment_method: str
    discount_code: str | None
    expires_at: datetime


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    user_id: uuid.UUID
    reason: str
    items: list[dict[str, Any]]
    discount_code: str | None


def new_order(method: str = "vnpay", amount: float = 125_000, user: uuid.UUID | None = None) -> OrderCreated:
    order_id = uuid.uuid4()
    return OrderCreated(
        order_id=order_id,
        order_number=f"ORD-{order_id.hex[:10].upper()}",
        user_id=user or uuid.uuid4(),
        items=[Item(uuid.uuid4(), None, "Demo product", amount - 25_000, 1, uuid.uuid4())],
        subtotal=amount - 25_000,
        discount_amount=0,
        shipping_fee=25_000,
        total_amount=amount,
        currency="VND",
        payment_method=method,
        discount_code=None,
        expires_at=datetime.now(UTC) + timedelta(minutes=15),
    )


def cancelled(order: OrderCreated) -> OrderCancelled:
    return OrderCancelled(
        order_id=order.order_id,
        user_id=order.user_id,
        reason="payment window closed",
        items=[],
        discount_code=None,
    )
