"""svc_order's events as the tests of their consumers publish them, built with svc_order's own Structs
(so they cannot drift from what it publishes; tests/test_events.py checks every consumer against it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from svc_order.events import CheckoutAborted, OrderCancelled, OrderCreated, SoldLine


def _number(order_id: uuid.UUID) -> str:
    return f"ORD-{order_id.hex[:10].upper()}"


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
        order_number=_number(order_id),
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


def cancelled(order_id: uuid.UUID, reason: str = "cancelled by the buyer") -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        user_id=uuid.uuid4(),
        reason=reason,
        items=[],
        discount_code=None,
        order_number=_number(order_id),
        total_amount=125_000,
    )


def aborted(
    order_id: uuid.UUID, reason: str = "checkout failed", discount_code: str | None = None
) -> CheckoutAborted:
    """The compensation of a checkout that held things for `order_id` and never became an order."""
    return CheckoutAborted(
        order_id=order_id, user_id=uuid.uuid4(), reason=reason, items=[], discount_code=discount_code
    )
