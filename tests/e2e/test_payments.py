"""Payments through the running stack: order.created -> the gateway sandbox -> its IPN through the
edge's public route -> the payment settled, seen and refunded through the edge.

order.created is published here the way svc_order publishes it (through an outbox, here svc_payment's,
whose relay sends it to order.exchange), so this runs without svc_order. The sandbox is handed the
edge's public `/api/payments/pay/{orderId}`, the paymentUrl checkout gives a buyer.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from kit import settings
from kit.bus import publish
from shop.map import seed_user_id
from tests.e2e.support import token
from tests.orders import new_order
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def _order_for_the_seed_user(method: str) -> uuid.UUID:
    order = new_order(method, 150_000, user=seed_user_id("user@shop.local"))
    url = settings.load("payment").database_url
    assert url
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await publish(conn, order)
    finally:
        await conn.close()
    return order.order_id


async def test_a_buyer_pays_at_each_gateway_and_an_admin_refunds(edge: httpx.AsyncClient) -> None:
    buyer = await token(edge, "user@shop.local", "User123!")
    seller = await token(edge, "seller@shop.local", "Seller123!")
    admin = await token(edge, "admin@shop.local", "Admin123!")
    async with httpx.AsyncClient(base_url=settings.service_url("sandbox"), timeout=10) as sandbox:
        for method in ("vnpay", "momo", "zalopay"):
            order_id = await _order_for_the_seed_user(method)
            url = f"/api/payments/orders/{order_id}"

            async def payment(status: str, url: str = url) -> dict[str, Any] | None:
                response = await edge.get(url, headers=buyer)
                found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
                return found if found is not None and found["status"] == status else None

            pending = await eventually(lambda: payment("PENDING"))
            assert pending["amount"] == 150000 and pending["method"] == method
            assert (await edge.get(url, headers=seller)).status_code == 404

            pay_url = f"{settings.service_url('edge')}/api/payments/pay/{order_id}"  # the public route
            paid = await sandbox.post("/sandbox/pay", json={"paymentUrl": pay_url, "outcome": "success"})
            assert paid.status_code == 200 and paid.json()["ipnStatus"] in (200, 204), paid.text
            settled = await eventually(lambda: payment("SUCCEEDED"))
            assert settled["transactionId"] == paid.json()["transactionId"]
            back = await edge.get(paid.json()["returnUrl"].removeprefix(str(edge.base_url).rstrip("/")))
            assert back.status_code == 200 and back.json()["status"] == "SUCCEEDED"

            refund = f"/api/payments/{settled['paymentId']}/refund"
            assert (await edge.post(refund, json={}, headers=buyer)).status_code == 403
            refunded = await edge.post(refund, json={}, headers=admin)
            assert refunded.status_code == 201, refunded.text
            assert refunded.json()["paymentStatus"] == "REFUNDED"
