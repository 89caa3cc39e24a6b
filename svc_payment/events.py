"""Events svc_payment publishes (payment.exchange) and its handlers of the order events it consumes."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg

from kit.bus import Event, Handler, publish
from payment_gateways import METHODS, WHOLE_VND_ONLY
from svc_payment import store

log = logging.getLogger(__name__)

MAX_AMOUNT = Decimal("9999999999999999.99")  # numeric(18, 2)


class OrderCreated(Event):
    routing_key = "order.created"
    order_id: uuid.UUID
    order_number: str
    user_id: uuid.UUID
    total_amount: Decimal
    payment_method: str
    currency: str = "VND"
    expires_at: datetime | None = None


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    reason: str = ""


class PaymentSucceeded(Event):
    routing_key = "payment.success"
    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: float
    method: str
    transaction_id: str
    paid_at: datetime


class PaymentFailed(Event):
    routing_key = "payment.failed"
    payment_id: uuid.UUID
    order_id: uuid.UUID
    method: str
    reason: str
    error_code: str


class PaymentRefunded(Event):
    """A refund went through; `fullyRefunded` tells a partial refund from the last one. The order's
    number and owner are there for svc_notify's mail."""

    routing_key = "payment.refunded"
    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: float
    refund_id: uuid.UUID
    fully_refunded: bool
    order_number: str
    user_id: uuid.UUID


def _unpayable(event: OrderCreated) -> tuple[str, str] | None:
    """(error code, reason) when no gateway can take this order's payment."""
    amount = event.total_amount
    if event.payment_method not in METHODS:
        return "UNSUPPORTED_METHOD", f"Payment method {event.payment_method!r} is not supported"
    if event.currency != "VND":
        return "UNSUPPORTED_CURRENCY", f"Currency {event.currency!r} is not supported"
    if not Decimal(0) < amount <= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        return "INVALID_AMOUNT", f"{amount} is not a payable amount"
    if event.payment_method in WHOLE_VND_ONLY and amount != amount.to_integral_value():
        return "INVALID_AMOUNT", f"{event.payment_method} takes whole VND only, not {amount}"
    return None


async def order_created(conn: asyncpg.Connection, event: OrderCreated) -> None:
    """A new order awaits payment: open its payment once (a redelivered or re-sent event finds it)."""
    await conn.execute(store.LOCK_ORDER, event.order_id)
    problem = _unpayable(event)
    code, reason = problem or (None, None)
    opened = await conn.fetchrow(
        store.OPEN_PAYMENT,
        uuid.uuid4(),
        event.order_id,
        event.order_number,
        event.user_id,
        event.payment_method,
        # A failed payment keeps the order's amount when the column can hold it, for the record.
        event.total_amount if abs(event.total_amount) <= MAX_AMOUNT else Decimal(0),
        event.currency,
        "FAILED" if problem else "PENDING",
        event.expires_at,
        code,
        reason,
    )
    if opened is not None and opened["status"] == "FAILED":
        assert code is not None and reason is not None
        log.warning("order cannot be paid", extra={"orderId": str(event.order_id), "reason": reason})
        await publish(
            conn,
            PaymentFailed(
                payment_id=opened["id"],
                order_id=event.order_id,
                method=event.payment_method,
                reason=reason,
                error_code=code,
            ),
        )


async def order_cancelled(conn: asyncpg.Connection, event: OrderCancelled) -> None:
    """The order is gone: a pending payment is cancelled, a paid one flagged for refund, never reopened."""
    await conn.execute(store.LOCK_ORDER, event.order_id)
    row = await conn.fetchrow(store.CANCEL_ORDER, event.order_id)
    if row is None:
        # Its order.created is still on the way (another queue): the payment will be born cancelled.
        await conn.execute(store.RECORD_EARLY_CANCELLATION, event.order_id, event.reason[:500])
    elif row["status"] == "REFUND_REQUIRED":
        log.warning("paid order was cancelled: refund required", extra={"paymentId": str(row["id"])})


handlers: dict[str, Handler] = {
    OrderCreated.routing_key: order_created,
    OrderCancelled.routing_key: order_cancelled,
}
