"""Helpers shared by the end-to-end tests: accounts and tokens, a stocked product, an order's progress."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from kit import settings
from tests.support import eventually


def demo_leaf(tree: list[dict[str, Any]]) -> dict[str, Any]:
    """A third-level category of the demo catalog; other tests may add childless roots beside it."""
    return next(grandchild for root in tree for child in root["children"] for grandchild in child["children"])


def new_email() -> str:
    return f"e2e{uuid.uuid4().hex[:12]}@shop.test"


async def mailed_token(mail: httpx.AsyncClient, email: str) -> str:
    async def verification_mail() -> list[dict[str, str]]:
        return (await mail.get("/api/messages", params={"to": email})).json()

    (message,) = await eventually(verification_mail)
    match = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", message["body"])
    assert match, message["body"]
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token(edge: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["accessToken"])


POLL = 0.25

ADDRESS = {
    "fullName": "Tran Thi B",
    "phone": "+84987654321",
    "line1": "2 Hai Ba Trung",
    "city": "Hanoi",
    "country": "VN",
}


async def stocked_product(edge: httpx.AsyncClient, seller: dict[str, str], units: int, price: float) -> str:
    category = demo_leaf((await edge.get("/api/categories")).json())
    body = {"name": f"E2E Kettle {uuid.uuid4().hex[:8]}", "price": price, "categoryId": category["id"]}
    created = await edge.post("/api/products", json=body, headers=seller)
    assert created.status_code == 201, created.text
    product_id: str = created.json()["id"]

    # svc_inventory learns the product's seller from product.created; then the seller may stock it.
    async def stocked() -> bool:
        answer = await edge.put(
            f"/api/inventory/{product_id}", json={"quantity": units, "lowStockThreshold": 0}, headers=seller
        )
        return answer.status_code == 200

    await eventually(stocked, within=15, interval=POLL)
    return product_id


async def pay(order: dict[str, Any], outcome: str) -> None:
    pay_url = order["paymentUrl"]
    assert pay_url == f"{settings.service_url('edge')}/api/payments/pay/{order['orderId']}"
    async with httpx.AsyncClient(base_url=settings.service_url("sandbox"), timeout=10) as sandbox:
        paid = await sandbox.post("/sandbox/pay", json={"paymentUrl": pay_url, "outcome": outcome})
    assert paid.status_code == 200, paid.text


async def order_when(
    edge: httpx.AsyncClient, who: dict[str, str], order_id: str, status: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        answer = await edge.get(f"/api/orders/{order_id}", headers=who)
        assert answer.status_code == 200, answer.text
        order: dict[str, Any] = answer.json()
        return order if order["status"] == status else None

    # Polled gently: the buyer's requests count against the edge's per-user rate limit.
    return await eventually(reached, within=20, interval=POLL)


async def whole_document(edge: httpx.AsyncClient) -> dict[str, Any]:
    async def complete() -> dict[str, Any] | None:
        document: dict[str, Any] = (await edge.get("/openapi.json")).json()
        return document if document["x-missing"] == [] else None

    return await eventually(complete)
