"""svc_payment and the gateway sandbox in-process, wired to each other through ASGI transports.

The sandbox's IPNs and redirects reach the payment app, and the payment app's gateway calls (MoMo and
ZaloPay sessions, queries, refunds) reach the sandbox, with real PostgreSQL and RabbitMQ underneath.
Order events are published the way svc_order will: through an outbox and the relay, onto order.exchange.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from devsinks import payments as sandbox
from kit import bus, settings
from kit.app import Deps, make_app
from kit.bus import Event, publish
from svc_order.events import OrderCreated
from svc_payment import providers
from svc_payment.app import service
from svc_payment.config import PaymentConfig
from tests.orders import new_order
from tests.support import eventually, identity, serve

# No background reconciliation: tests run it themselves, at the moment they choose.
QUIET = {"PAYMENT_RECONCILE_SECONDS": "3600", "PAYMENT_PAY_WAIT_SECONDS": "0.5"}
CONFIG = settings.load("payment", {**os.environ, **QUIET}, own=PaymentConfig)
PUBLIC = CONFIG.public_url


class Stack(msgspec.Struct):
    http: httpx.AsyncClient  # the payment service
    sandbox: httpx.AsyncClient
    db: asyncpg.Pool
    deps: Deps


@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    await bus.declare_topology(CONFIG.amqp_url, {"payment": list(service.handlers)})
    payment_app = make_app(service, CONFIG)
    sandbox_app = sandbox.make_app(transport=httpx.ASGITransport(app=payment_app))
    async with serve(payment_app) as http, serve(sandbox_app) as gateway:
        d: Deps = payment_app.state.deps
        gateways = providers.PROVIDERS.of(d)
        await gateways.http.aclose()
        gateways.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox_app), timeout=10)
        yield Stack(http, gateway, d.db, d)


async def send(stack: Stack, *events: Event) -> None:
    async with stack.db.acquire() as conn, conn.transaction():
        await publish(conn, *events)


async def payment(stack: Stack, order_id: uuid.UUID) -> asyncpg.Record | None:
    return await stack.db.fetchrow("SELECT * FROM payments WHERE order_id = $1", order_id)


async def payment_of(stack: Stack, order: OrderCreated, status: str = "PENDING") -> asyncpg.Record:
    """The order's payment once the consumer has it in `status`."""

    async def check() -> asyncpg.Record | None:
        row = await payment(stack, order.order_id)
        return row if row is not None and row["status"] == status else None

    return await eventually(check)


async def placed(stack: Stack, method: str = "vnpay", amount: float = 125_000) -> OrderCreated:
    order = new_order(method, amount)
    await send(stack, order)
    await payment_of(stack, order)
    return order


def pay_url(order: OrderCreated) -> str:
    return f"{PUBLIC}/api/payments/pay/{order.order_id}"


async def buy(
    stack: Stack, order: OrderCreated, outcome: str = "success", notify: bool = True, url: str | None = None
) -> dict[str, Any]:
    """The buyer pays (or fails to) at the sandbox, which notifies the payment service.

    `url` is where the buyer is: by default the order's paymentUrl, or a gateway page already open.
    """
    response = await stack.sandbox.post(
        "/sandbox/pay", json={"paymentUrl": url or pay_url(order), "outcome": outcome, "notify": notify}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def events(stack: Stack, routing_key: str, order_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await stack.db.fetch(
        "SELECT payload FROM outbox WHERE routing_key = $1"
        " AND convert_from(payload, 'UTF8')::jsonb->>'orderId' = $2 ORDER BY id",
        routing_key,
        str(order_id),
    )
    return [msgspec.json.decode(r["payload"]) for r in rows]


ADMIN = identity("Admin")
