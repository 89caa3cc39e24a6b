"""Events svc_order publishes (order.exchange) and the fields it reads of those it consumes.

Shapes as fixed between svc_order and svc_payment (money: JSON numbers in VND). The consumers are in
`svc_order.workflow.handlers`: a payment's outcome moves the order along its workflow.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from kit.bus import Event
from svc_order import store


class StockLine(msgspec.Struct, rename="camel", kw_only=True):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    quantity: int


class SoldLine(StockLine, kw_only=True):
    product_name: str
    unit_price: float
    seller_id: uuid.UUID | None


class OrderCreated(Event):
    """A PENDING order waiting for its payment; svc_payment creates the payment from it."""

    routing_key = "order.created"
    order_id: uuid.UUID
    order_number: str
    user_id: uuid.UUID
    items: list[SoldLine]
    subtotal: float
    discount_amount: float
    shipping_fee: float
    total_amount: float
    payment_method: str
    discount_code: str | None
    expires_at: datetime
    currency: str = "VND"


class OrderConfirmed(Event):
    """Paid: svc_inventory commits the reservation, svc_discount records the usage, svc_notify mails the
    customer (with the number and total it shows)."""

    routing_key = "order.confirmed"
    order_id: uuid.UUID
    user_id: uuid.UUID
    items: list[StockLine]
    discount_code: str | None
    order_number: str
    total_amount: float


class OrderCancelled(Event):
    """Cancelled or failed: svc_inventory releases, svc_discount frees the usage, svc_payment cancels or
    flags the payment for refund, svc_notify tells the customer (with the number and total it shows)."""

    routing_key = "order.cancelled"
    order_id: uuid.UUID
    user_id: uuid.UUID
    reason: str
    items: list[StockLine]
    discount_code: str | None
    order_number: str
    total_amount: float


class CheckoutAborted(Event):
    """A checkout that never became an order (svc_order.intents): svc_discount frees the usage it may
    hold and svc_inventory releases the stock it may hold (ReleaseStock usually did already). There
    is no order and no payment: `order_id` is the id the checkout held things for.

    Not in the contract's table (section 6): our addition on order.exchange (README, "Events").
    """

    routing_key = "checkout.aborted"
    order_id: uuid.UUID
    user_id: uuid.UUID
    reason: str  # why it was aborted: "checkout failed", "checkout refused", "checkout abandoned"
    items: list[StockLine]
    discount_code: str | None


class PaymentSucceeded(Event):
    routing_key = "payment.success"
    payment_id: uuid.UUID
    order_id: uuid.UUID
    transaction_id: str | None = None
    paid_at: datetime | None = None


class PaymentFailed(Event):
    routing_key = "payment.failed"
    payment_id: uuid.UUID
    order_id: uuid.UUID
    reason: str = ""
    error_code: str = ""


class PaymentRefunded(Event):
    routing_key = "payment.refunded"
    payment_id: uuid.UUID
    order_id: uuid.UUID


async def stock_lines(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[StockLine]]:
    """The lines of several orders in one query, for the events that settle their stock."""
    lines: dict[uuid.UUID, list[StockLine]] = defaultdict(list)
    for row in await conn.fetch(store.STOCK_LINES, list(order_ids)):
        lines[row["order_id"]].append(
            StockLine(product_id=row["product_id"], variant_id=row["variant_id"], quantity=row["quantity"])
        )
    return lines
