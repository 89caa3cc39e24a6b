"""A payment's life: what a gateway's word does to it, and refunds.

    PENDING ──paid──> SUCCEEDED ──refund──> PARTIALLY_REFUNDED ──> REFUNDED
       │                  └──order.cancelled──> REFUND_REQUIRED ──refund──┘
       ├──failed──> FAILED
       └──order.cancelled──> CANCELLED ──paid (too late)──> REFUND_REQUIRED

Each step runs in the caller's transaction with the payment's row locked, and its event goes to the
outbox in that same transaction. The IPN path and reconciliation both call `settle`: whichever brings
the gateway's final word first moves the payment; the other finds `gateway_result` set and changes
nothing.
"""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import msgspec
from prometheus_client import Counter

from kit.bus import publish
from kit.errors import BusinessRuleViolation, Conflict, NotFound, invalid
from payment_gateways import WHOLE_VND_ONLY
from svc_payment import store
from svc_payment.events import PaymentFailed, PaymentRefunded, PaymentSucceeded

log = logging.getLogger(__name__)

notices = Counter(
    "shop_payment_notices_total", "Gateway notices by what they did", ["method", "source", "outcome"]
)

PENDING, SUCCEEDED, FAILED, CANCELLED = "PENDING", "SUCCEEDED", "FAILED", "CANCELLED"
REFUND_REQUIRED, PARTIALLY_REFUNDED, REFUNDED = "REFUND_REQUIRED", "PARTIALLY_REFUNDED", "REFUNDED"
REFUNDABLE = frozenset({SUCCEEDED, PARTIALLY_REFUNDED, REFUND_REQUIRED})


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """A row of `payments` (the columns of `store.PAYMENT_COLUMNS`)."""

    id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    user_id: uuid.UUID
    method: str
    amount: Decimal
    currency: str
    status: str
    expires_at: datetime | None
    reference: str | None
    gateway_url: str | None
    session_at: datetime | None
    gateway_result: str | None
    transaction_id: str | None
    paid_at: datetime | None
    failure_code: str | None
    failure_reason: str | None
    refunded_amount: Decimal
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Payment:
        return cls(**dict(row))

    def check_payable(self, now: datetime) -> None:
        """Conflict unless the buyer may still be sent to the gateway."""
        if self.status != PENDING:
            raise Conflict(f"The payment is {self.status}; there is nothing to pay")
        if self.expires_at is not None and self.expires_at <= now:
            raise Conflict("The payment window of this order has closed")


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    payment_id: uuid.UUID
    amount: Decimal
    reason: str
    requested_by: str
    created_at: datetime


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """A gateway's final word on one of our references, its signature already checked."""

    method: str
    reference: str
    amount: Decimal
    paid: bool
    code: str
    message: str
    transaction_id: str | None = None
    paid_at: datetime | None = None


class Outcome(enum.Enum):
    """What a notice did; each gateway turns it into the answer it expects."""

    CONFIRMED = "confirmed"  # the gateway's first final word: the payment moved (or was flagged)
    ALREADY = "already"  # said before: nothing changed
    UNKNOWN = "unknown"  # no payment has this reference
    WRONG_AMOUNT = "wrong_amount"  # signed, but not the amount we asked for: nothing changed
    FORGED = "forged"  # bad signature or malformed: never reaches `settle`
    RETRY = "retry"  # we could not record it (database down): the gateway should call again


class RefundResult(msgspec.Struct, frozen=True):
    """The gateway's answer to a refund: SUCCEEDED, FAILED, or PENDING (no answer yet; sent again)."""

    status: str
    gateway_refund_id: str | None = None
    message: str = ""


async def settle(conn: asyncpg.Connection, notice: Notice, source: str) -> Outcome:
    """Apply a signature-checked notice (`source` "ipn" or "query") and record it."""
    row = await conn.fetchrow(store.PAYMENT_BY_REFERENCE_FOR_UPDATE, notice.reference)
    payment = None if row is None else Payment.of(row)
    outcome = await _apply(conn, payment, notice)
    await conn.execute(
        store.RECORD_NOTICE,
        payment and payment.id,
        notice.method,
        source,
        notice.reference,
        notice.paid,
        notice.amount,
        notice.code,
        outcome.value,
    )
    notices.labels(notice.method, source, outcome.value).inc()
    return outcome


async def _apply(conn: asyncpg.Connection, payment: Payment | None, notice: Notice) -> Outcome:
    if payment is None or payment.method != notice.method:
        return Outcome.UNKNOWN
    if notice.amount != payment.amount:
        log.warning("gateway notice with a wrong amount", extra={"paymentId": str(payment.id)})
        return Outcome.WRONG_AMOUNT
    if payment.gateway_result is not None:
        return Outcome.ALREADY
    if notice.paid:
        # Money taken for an order that is already gone is kept on record and flagged, never reopened.
        status = SUCCEEDED if payment.status == PENDING else REFUND_REQUIRED
    else:
        status = FAILED if payment.status == PENDING else payment.status
    await conn.execute(
        store.SETTLE,
        payment.id,
        status,
        "paid" if notice.paid else "failed",
        notice.transaction_id,
        notice.paid_at if notice.paid else None,
        None if notice.paid else notice.code,
        None if notice.paid else notice.message[:500],
    )
    if payment.status != PENDING:
        if notice.paid:
            log.warning("paid after the order was cancelled: refund required", extra={"id": str(payment.id)})
    elif notice.paid:
        await publish(
            conn,
            PaymentSucceeded(
                payment_id=payment.id,
                order_id=payment.order_id,
                amount=float(payment.amount),
                method=payment.method,
                transaction_id=notice.transaction_id or "",
                paid_at=(notice.paid_at or datetime.now(UTC)).astimezone(UTC),
            ),
        )
    else:
        await publish(
            conn,
            PaymentFailed(
                payment_id=payment.id,
                order_id=payment.order_id,
                method=payment.method,
                reason=notice.message or "declined by the gateway",
                error_code=notice.code,
            ),
        )
    return Outcome.CONFIRMED


async def start_refund(
    conn: asyncpg.Connection, payment_id: uuid.UUID, amount: Decimal | None, reason: str, by: str
) -> tuple[Payment, Refund]:
    """Record a PENDING refund of `amount` (default: all that is left) before asking the gateway."""
    row = await conn.fetchrow(store.PAYMENT_BY_ID_FOR_UPDATE, payment_id)
    if row is None:
        raise NotFound("Payment not found")
    payment = Payment.of(row)
    if payment.status not in REFUNDABLE:
        raise Conflict(f"The payment is {payment.status}; only a paid payment can be refunded")
    # Refunds still waiting for the gateway count as spent, so two refunds never exceed the payment.
    pending = await conn.fetchval(store.PENDING_REFUNDS, payment.id)
    left = payment.amount - payment.refunded_amount - pending
    if amount is None:
        amount = left
    if left <= 0:
        raise BusinessRuleViolation("Nothing is left to refund on this payment")
    if amount > left:
        raise BusinessRuleViolation(f"At most {left} can still be refunded")
    if payment.method in WHOLE_VND_ONLY and amount != amount.to_integral_value():
        raise invalid("amount", f"{payment.method} refunds whole VND only")
    record = await conn.fetchrow(store.INSERT_REFUND, uuid.uuid4(), payment.id, amount, reason, by)
    return payment, Refund(**dict(record))


async def finish_refund(conn: asyncpg.Connection, refund_id: uuid.UUID, result: RefundResult) -> None:
    """Record the gateway's final answer; a success moves the payment and announces the refund."""
    row = await conn.fetchrow(
        store.FINISH_REFUND, refund_id, result.status, result.gateway_refund_id, result.message[:500] or None
    )
    if row is None or result.status != SUCCEEDED:
        return  # already finished by another attempt, or refused
    paid = await conn.fetchrow(store.APPLY_REFUND, row["payment_id"], row["amount"])
    await publish(
        conn,
        PaymentRefunded(
            payment_id=row["payment_id"],
            order_id=paid["order_id"],
            amount=float(row["amount"]),
            refund_id=refund_id,
            fully_refunded=paid["status"] == REFUNDED,
            order_number=paid["order_number"],
            user_id=paid["user_id"],
        ),
    )
