"""Checkout through the edge with the whole stack: cart -> order -> the gateway sandbox -> confirmed or
failed, with stock committed or given back as svc_inventory reports it.

The sandbox is handed the `paymentUrl` checkout answered, as a buyer's browser would follow it: the
edge's public `/api/payments/pay/{orderId}`, redirecting to the gateway's page.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.support import ADDRESS, POLL, order_when, pay, stocked_product, token
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def _stock(edge: httpx.AsyncClient, product_id: str) -> dict[str, int]:
    level = (await edge.get(f"/api/inventory/{product_id}")).json()
    return {k: level[k] for k in ("onHand", "reserved", "available")}


async def _mail_about(mail: httpx.AsyncClient, to: str, subject: str) -> dict[str, Any]:
    async def arrived() -> list[dict[str, Any]]:
        messages = (await mail.get("/api/messages", params={"to": to})).json()
        return [message for message in messages if message["subject"] == subject]

    [message] = await eventually(arrived, within=15, interval=POLL)
    return message


async def test_a_buyer_checks_out_pays_and_the_stock_is_committed(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    buyer = await token(edge, "user@shop.local", "User123!")
    seller = await token(edge, "seller@shop.local", "Seller123!")
    product = await stocked_product(edge, seller, units=3, price=260_000)
    assert (await edge.get("/api/cart")).status_code == 401
    await edge.delete("/api/cart", headers=buyer)
    added = await edge.post("/api/cart/items", json={"productId": product, "quantity": 2}, headers=buyer)
    assert added.status_code == 200 and added.json()["subtotal"] == 520_000

    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"shippingAddress": ADDRESS, "paymentMethod": "vnpay"}
    placed = await edge.post("/api/orders/checkout", json=body, headers={**buyer, **key})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["status"], order["totalAmount"], order["shippingFee"]) == ("PENDING", 520_000, 0)
    replayed = await edge.post("/api/orders/checkout", json=body, headers={**buyer, **key})
    assert replayed.json()["orderId"] == order["orderId"]
    other = await edge.post(
        "/api/orders/checkout", json={**body, "paymentMethod": "momo"}, headers={**buyer, **key}
    )
    assert other.status_code == 409
    assert await _stock(edge, product) == {"onHand": 3, "reserved": 2, "available": 1}
    assert (await edge.get(f"/api/orders/{order['orderId']}", headers=seller)).status_code == 404

    await pay(order, "success")

    confirmed = await order_when(edge, buyer, order["orderId"], "CONFIRMED")
    assert confirmed["paymentStatus"] == "PAID" and confirmed["transactionId"]

    async def committed() -> bool:
        return await _stock(edge, product) == {"onHand": 1, "reserved": 0, "available": 1}

    await eventually(committed, within=15, interval=POLL)
    mine = (await edge.get("/api/orders", headers=buyer)).json()
    assert any(o["id"] == order["orderId"] for o in mine["items"])
    number = confirmed["orderNumber"]
    found = await edge.get(
        "/api/orders", params={"search": number, "fields": "id,orderNumber"}, headers=buyer
    )
    assert found.json()["items"] == [{"id": order["orderId"], "orderNumber": number}]
    sold = (await edge.get("/api/orders/seller", headers=seller)).json()
    assert any(o["id"] == order["orderId"] for o in sold["items"])
    confirmation = await _mail_about(
        mail, "user@shop.local", f"Your order {confirmed['orderNumber']} is confirmed"
    )
    assert "Hello Demo User," in confirmation["body"] and "(520,000 VND)" in confirmation["body"]


async def test_a_failed_payment_cancels_the_order_and_only_one_of_two_buyers_gets_the_last_unit(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    buyer = await token(edge, "user@shop.local", "User123!")
    seller = await token(edge, "seller@shop.local", "Seller123!")
    product = await stocked_product(edge, seller, units=1, price=80_000)
    # MoMo notifies a failure (ZaloPay, like the real one, calls back only for a paid order).
    body = {"shippingAddress": ADDRESS, "paymentMethod": "momo"}
    for who in (buyer, seller):  # a seller shops too
        await edge.delete("/api/cart", headers=who)
        await edge.post("/api/cart/items", json={"productId": product, "quantity": 1}, headers=who)
    first = await edge.post("/api/orders/checkout", json=body, headers=buyer)
    second = await edge.post("/api/orders/checkout", json=body, headers=seller)
    assert (first.status_code, second.status_code) == (201, 422), second.text
    assert second.json()["error"] == "BusinessRuleViolation"
    # The last unit is held: its seller hears that the product runs low (its threshold is 0).
    name = (await edge.get(f"/api/products/{product}")).json()["name"]
    alert = await _mail_about(mail, "seller@shop.local", f"Low stock: {name}")
    assert "0 left to sell" in alert["body"]

    await pay(first.json(), "failed")

    failed = await order_when(edge, buyer, first.json()["orderId"], "FAILED")
    cancelled = await _mail_about(
        mail, "user@shop.local", f"Your order {failed['orderNumber']} was cancelled"
    )
    assert "was cancelled: the payment did not go through." in cancelled["body"]

    async def given_back() -> bool:
        return await _stock(edge, product) == {"onHand": 1, "reserved": 0, "available": 1}

    await eventually(given_back, within=15, interval=POLL)
    retried = await edge.post("/api/orders/checkout", json=body, headers=seller)
    assert retried.status_code == 201, retried.text
