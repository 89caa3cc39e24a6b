"""The order status workflow: which moves are allowed, who makes them, and the events they announce.

    PENDING ──payment.success──> CONFIRMED ──Admin──> PROCESSING ──Admin──> SHIPPED ──Admin──> DELIVERED
       │  └──payment.failed──> FAILED          │                  │
       │                                       │                  │
       └──sweeper / owner / Admin──> CANCELLED <──owner / Admin───┘   (before shipping only)

    CONFIRMED, PROCESSING, SHIPPED, DELIVERED, CANCELLED ──payment.refunded──> REFUNDED

A refund is always svc_payment's (`POST /api/payments/{id}/refund`, then `payment.refunded`), never a
status an Admin sets: the money has to move first. Every move is one guarded UPDATE (`status = ANY(from)`),
so a race (the sweeper and a late payment, two Admins) has exactly one winner; the loser changes nothing.
A cancellation announces `order.cancelled`, a confirmation `order.confirmed`, in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from kit.bus import Handler, publish
from kit.errors import Conflict, NotFound
from svc_order import store
from svc_order.events import (
    OrderCancelled,
    OrderConfirmed,
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    stock_lines,
)

log = logging.getLogger(__name__)

# target status -> the statuses it may be reached from
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "CONFIRMED": ("PENDING",),
    "FAILED": ("PENDING",),
    "PROCESSING": ("CONFIRMED",),
    "SHIPPED": ("PROCESSING",),
    "DELIVERED": ("SHIPPED",),
    "CANCELLED": ("PENDING", "CONFIRMED", "PROCESSING"),
    "REFUNDED": ("CONFIRMED", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED"),
}
# What `PATCH /api/orders/{id}/status` may ask for.
ADMIN_TARGETS = frozenset({"PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED"})
SWEEP_BATCH = 500


async def move(
    conn: asyncpg.Connection,
    order_ids: Sequence[uuid.UUID],
    target: str,
    *,
    note: str,
    actor: uuid.UUID | None = None,
    payment_status: str | None = None,
    cancel_reason: str | None = None,
) -> list[asyncpg.Record]:
    """Move those of `order_ids` that may go to `target`; the moved rows (id, user_id, discount_code)."""
    moved: list[asyncpg.Record] = await conn.fetch(
        store.TRANSITION,
        list(order_ids),
        target,
        list(ALLOWED_FROM[target]),
        actor,
        payment_status,
        cancel_reason,
        note,
    )
    return moved


async def cancel(
    conn: asyncpg.Connection,
    order_ids: Sequence[uuid.UUID],
    reason: str,
    note: str,
    actor: uuid.UUID | None = None,
    target: str = "CANCELLED",
    payment_status: str = "CANCELLED",
) -> list[asyncpg.Record]:
    """Cancel (or fail) orders and announce it: their stock and discount usage go back.

    A payment already taken stays PAID (`payment_status` only replaces a PENDING one): svc_payment
    flags it for refund when it sees `order.cancelled`.
    """
    moved = await move(
        conn,
        order_ids,
        target,
        note=note,
        actor=actor,
        payment_status=payment_status,
        cancel_reason=reason,
    )
    if moved:
        lines = await stock_lines(conn, [row["id"] for row in moved])
        await publish(
            conn,
            *(
                OrderCancelled(
                    order_id=row["id"],
                    user_id=row["user_id"],
                    reason=reason,
                    items=lines[row["id"]],
                    discount_code=row["discount_code"],
                    order_number=row["order_number"],
                    total_amount=float(row["total_amount"]),
                )
                for row in moved
            ),
        )
    return moved


async def change(
    conn: asyncpg.Connection, order_id: uuid.UUID, target: str, actor: uuid.UUID, note: str, reason: str
) -> None:
    """A person's move (owner's cancel, Admin's status change); 404 unknown order, 409 not allowed now."""
    if target == "CANCELLED":
        moved = await cancel(conn, [order_id], reason, note, actor)
    else:
        moved = await move(conn, [order_id], target, note=note, actor=actor)
    if moved:
        return
    current = await conn.fetchval(store.STATUS_OF, order_id)
    if current is None:
        raise NotFound("Order not found")
    raise Conflict(f"An order that is {current} cannot become {target}")


async def expire_unpaid(conn: asyncpg.Connection) -> int:
    """Cancel one batch of PENDING orders past their payment window; how many were cancelled."""
    async with conn.transaction():
        due = [row["id"] for row in await conn.fetch(store.DUE_FOR_CANCELLATION, SWEEP_BATCH)]
        if due:
            await cancel(conn, due, "payment_timeout", "not paid within the payment window")
    return len(due)


# -- consumers: what a payment's outcome does to its order ---------------------------------------------


async def _late(conn: asyncpg.Connection, order_id: uuid.UUID, what: str) -> None:
    """Record an outcome that comes too late to change anything (the order moved on)."""
    await conn.execute(store.NOTE, order_id, what)
    log.info("payment outcome for an order that moved on", extra={"orderId": str(order_id), "what": what})


async def payment_succeeded(conn: asyncpg.Connection, event: PaymentSucceeded) -> None:
    """PENDING -> CONFIRMED and `order.confirmed`; any other status only records the payment."""
    current = await conn.fetchrow(store.PAYMENT_OF, event.order_id)
    if current is None:
        log.warning("payment for an unknown order", extra={"orderId": str(event.order_id)})
        return
    if current["status"] != "PENDING" and current["payment_id"] == event.payment_id:
        return  # this payment was applied already (a second event for it)
    paid_at = event.paid_at or datetime.now(UTC)
    await conn.execute(store.RECORD_PAYMENT, event.order_id, event.payment_id, event.transaction_id, paid_at)
    if current["status"] != "PENDING":
        await _late(conn, event.order_id, f"payment {event.payment_id} succeeded while {current['status']}")
        return
    moved = await move(
        conn,
        [event.order_id],
        "CONFIRMED",
        note=f"paid, transaction {event.transaction_id}",
        payment_status="PAID",
    )
    lines = await stock_lines(conn, [event.order_id])
    row = moved[0]
    await publish(
        conn,
        OrderConfirmed(
            order_id=row["id"],
            user_id=row["user_id"],
            items=lines[row["id"]],
            discount_code=row["discount_code"],
            order_number=row["order_number"],
            total_amount=float(row["total_amount"]),
        ),
    )


async def payment_failed(conn: asyncpg.Connection, event: PaymentFailed) -> None:
    """PENDING -> FAILED and `order.cancelled` (stock and discount usage go back)."""
    detail = f"payment failed: {event.reason or 'no reason given'} ({event.error_code or '-'})"
    if not await cancel(
        conn, [event.order_id], "payment_failed", detail, target="FAILED", payment_status="FAILED"
    ):
        await _late(conn, event.order_id, detail)


async def payment_refunded(conn: asyncpg.Connection, event: PaymentRefunded) -> None:
    """The money went back: REFUNDED (from any paid status)."""
    note = f"refunded (payment {event.payment_id})"
    if not await move(conn, [event.order_id], "REFUNDED", note=note, payment_status="REFUNDED"):
        await _late(conn, event.order_id, note)


handlers: dict[str, Handler] = {
    PaymentSucceeded.routing_key: payment_succeeded,
    PaymentFailed.routing_key: payment_failed,
    PaymentRefunded.routing_key: payment_refunded,
}
