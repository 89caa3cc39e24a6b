"""Events svc_discount consumes (it publishes none): an order's outcome, or its checkout's, settles its
discount usage."""

from __future__ import annotations

import uuid

import asyncpg

from kit.bus import Event, Handler
from svc_discount import store


class OrderConfirmed(Event):
    routing_key = "order.confirmed"
    order_id: uuid.UUID


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID


class CheckoutAborted(Event):
    routing_key = "checkout.aborted"
    order_id: uuid.UUID


async def order_confirmed(conn: asyncpg.Connection, event: OrderConfirmed) -> None:
    """The reserved usage becomes recorded usage (only from RESERVED, so a repeat does nothing)."""
    await conn.execute(store.CONFIRM_USAGE, event.order_id)


async def order_cancelled(conn: asyncpg.Connection, event: OrderCancelled) -> None:
    """The usage is freed and counts no more against the limits (once)."""
    await conn.execute(store.RELEASE_USAGE, event.order_id)


async def checkout_aborted(conn: asyncpg.Connection, event: CheckoutAborted) -> None:
    """A checkout that never became an order gives back the usage it may hold (once)."""
    await conn.execute(store.RELEASE_USAGE, event.order_id)


handlers: dict[str, Handler] = {
    OrderConfirmed.routing_key: order_confirmed,
    OrderCancelled.routing_key: order_cancelled,
    CheckoutAborted.routing_key: checkout_aborted,
}
