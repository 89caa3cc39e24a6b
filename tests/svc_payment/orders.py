"""Order events for svc_payment's tests, built with svc_order's own Structs (so they cannot drift from
what svc_order publishes; tests/test_events.py checks every consumer against every publisher)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from svc_order.events import OrderCancelled, OrderCreated, SoldLine


def new_order(method: str = "vnpay", amount: float = 125_000, user: uuid.UUID | None = None) -> OrderCreated:
    order_id = uuid.uuid4()
    line = SoldLine(
        product_id=uuid.uuid4(),
        variant_id=None,
        quantity=1,
        product_name="Demo product",
        unit_price=amount - 25_000,
        seller_id=uuid.uuid4(),
    )
    return OrderCreated(
        order_id=order_id,
        order_number=f"ORD-{order_id.hex[:10].upper()}",
        user_id=user or uuid.uuid4(),
        items=[line],
        subtotal=amount - 25_000,
        discount_amount=0,
        shipping_fee=25_000,
        total_amount=amount,
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
        order_number=order.order_number,
        total_amount=order.total_amount,
    )
