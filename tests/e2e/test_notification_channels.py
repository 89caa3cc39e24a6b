"""Email, SMS and push through the edge with the whole stack: a buyer's preferences and phone from
svc_user, a push subscription from the dev push sink, an order paid at the gateway sandbox; Twilio's
delivery reports come back through the edge; an Admin previews templates, searches deliveries and
re-drives a message parked in a DLQ once its cause is fixed."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kit import settings
from tests.e2e.support import ADDRESS, mailed_token, new_email, order_when, pay, stocked_product, token
from tests.support import eventually

pytestmark = pytest.mark.e2e
POLL = 0.25
PASSWORD = "Secret123!"
TEMPLATES = "/api/notifications/templates"


@pytest.fixture
async def sms(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The dev SMS sink the stack runs (a Procfile line)."""
    async with httpx.AsyncClient(base_url=settings.service_url("smssink"), timeout=10) as client:
        yield client


@pytest.fixture
async def push(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The dev push sink the stack runs (a Procfile line)."""
    async with httpx.AsyncClient(base_url=settings.service_url("pushsink"), timeout=10) as client:
        yield client


async def new_buyer(edge: httpx.AsyncClient, mail: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """A signed-up, verified and logged-in customer with a profile: (email, auth headers)."""
    email = new_email()
    body = {"email": email, "password": PASSWORD, "fullName": "Lê Thị Hoa"}
    assert (await edge.post("/api/auth/register", json=body)).status_code == 201
    verification = await mailed_token(mail, email)
    verified = await edge.post("/api/auth/verify-email", json={"email": email, "token": verification})
    assert verified.status_code == 200
    buyer = await token(edge, email, PASSWORD)

    async def has_profile() -> bool:
        return (await edge.get("/api/users/me", headers=buyer)).status_code == 200

    await eventually(has_profile, within=15, interval=POLL)
    return email, buyer


async def reachable_by(
    edge: httpx.AsyncClient, push: httpx.AsyncClient, buyer: dict[str, str], *, sms: bool
) -> tuple[str, dict[str, Any]]:
    """Give the buyer a phone, SMS on or off, push on, and a push subscription: (phone, subscription)."""
    phone = "+8491" + "".join(random.choices("0123456789", k=7))
    assert (await edge.patch("/api/users/me", json={"phone": phone}, headers=buyer)).status_code == 200
    preferences = {"language": "en", "notifications": {"email": True, "sms": sms, "push": True}}
    saved = await edge.put("/api/users/me/preferences", json=preferences, headers=buyer)
    assert saved.status_code == 200, saved.text
    subscription = (await push.post("/api/subscriptions")).json()
    body = {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}
    registered = await edge.post("/api/notifications/push/subscriptions", json=body, headers=buyer)
    assert registered.status_code == 201, registered.text
    return phone, subscription


async def confirmed_order(edge: httpx.AsyncClient, buyer: dict[str, str]) -> str:
    """Buy one unit of a fresh product (120,000 VND, 150,000 with shipping), pay; its number once CONFIRMED.

    Stocking the product waits for product.created to reach svc_inventory: by then the buyer's earlier
    preferences and phone have long reached svc_notify, through the same broker.
    """
    seller = await token(edge, "seller@shop.local", "Seller123!")
    product = await stocked_product(edge, seller, units=2, price=120_000)
    await edge.delete("/api/cart", headers=buyer)
    added = await edge.post("/api/cart/items", json={"productId": product, "quantity": 1}, headers=buyer)
    assert added.status_code == 200, added.text
    body = {"shippingAddress": ADDRESS, "paymentMethod": "vnpay"}
    placed = await edge.post("/api/orders/checkout", json=body, headers=buyer)
    assert placed.status_code == 201, placed.text
    await pay(placed.json(), "success")
    order = await order_when(edge, buyer, placed.json()["orderId"], "CONFIRMED")
    number: str = order["orderNumber"]
    return number


async def test_a_buyer_with_sms_and_push_on_gets_order_confirmed_on_all_three_even_past_a_flaky_provider(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient, sms: httpx.AsyncClient, push: httpx.AsyncClient
) -> None:
    email, buyer = await new_buyer(edge, mail)
    phone, subscription = await reachable_by(edge, push, buyer, sms=True)
    # Twilio answers 503 twice before it takes the message.
    assert (await sms.post("/api/faults", json={"to": phone, "failures": 2})).status_code == 201
    number = await confirmed_order(edge, buyer)

    async def mailed() -> list[dict[str, Any]]:
        mails = (await mail.get("/api/messages", params={"to": email})).json()
        return [m for m in mails if m["subject"] == f"Your order {number} is confirmed"]

    async def texted() -> list[dict[str, Any]]:
        return (await sms.get("/api/messages", params={"to": phone})).json()  # type: ignore[no-any-return]

    async def pushed() -> list[dict[str, Any]]:
        response = await push.get("/api/messages", params={"subscription": subscription["id"]})
        return response.json()  # type: ignore[no-any-return]

    await eventually(mailed, within=15, interval=POLL)
    [text] = await eventually(texted, within=15, interval=POLL)
    assert text["body"].startswith(f"Shop: order {number} is confirmed (150,000 VND).")
    [notice] = await eventually(pushed, within=15, interval=POLL)
    assert notice["payload"]["title"] == f"Order {number} confirmed"

    admin = await token(edge, "admin@shop.local", "Admin123!")

    async def delivered() -> dict[str, Any] | None:
        query = {"recipient": phone, "channel": "sms"}
        [row] = (await edge.get("/api/notifications/search", params=query, headers=admin)).json()["items"]
        return row if row["status"] == "DELIVERED" else None

    # Twilio's report (here the sink's, signed the same way) came back through the edge.
    row = await eventually(delivered, within=15, interval=POLL)
    assert (row["attempts"], row["providerId"]) == (3, text["sid"])
    assert row["lastError"].startswith("Twilio 503")
    mine = (await edge.get("/api/notifications", headers=buyer)).json()["items"]
    assert {(n["channel"], n["template"]) for n in mine} >= {
        ("email", "order-confirmed"),
        ("sms", "order-confirmed"),
        ("push", "order-confirmed"),
    }
    assert next(n for n in mine if n["id"] == notice["payload"]["id"])["channel"] == "push"


async def test_a_buyer_with_sms_off_gets_no_sms(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient, sms: httpx.AsyncClient, push: httpx.AsyncClient
) -> None:
    email, buyer = await new_buyer(edge, mail)
    phone, subscription = await reachable_by(edge, push, buyer, sms=False)
    number = await confirmed_order(edge, buyer)

    async def pushed() -> list[dict[str, Any]]:
        response = await push.get("/api/messages", params={"subscription": subscription["id"]})
        return response.json()  # type: ignore[no-any-return]

    # The push and the mail of the same event are out: the SMS would have been queued with them.
    await eventually(pushed, within=15, interval=POLL)
    mine = (await edge.get("/api/notifications", headers=buyer)).json()["items"]
    assert {n["channel"] for n in mine if n["template"] == "order-confirmed"} == {"email", "push"}
    assert (await sms.get("/api/messages", params={"to": phone})).json() == []
    mails = (await mail.get("/api/messages", params={"to": email})).json()
    assert f"Your order {number} is confirmed" in [m["subject"] for m in mails]


async def test_an_admin_previews_a_template_with_its_sms_length(edge: httpx.AsyncClient) -> None:
    admin = await token(edge, "admin@shop.local", "Admin123!")
    preview = await edge.post(
        f"{TEMPLATES}/order-cancelled/preview", json={"channel": "sms", "locale": "en"}, headers=admin
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["sms"]["segments"] == 1 and "ORD-20261125-0001" in preview.json()["body"]
    buyer = await token(edge, "user@shop.local", "User123!")
    refused = await edge.post(f"{TEMPLATES}/order-cancelled/preview", json={}, headers=buyer)
    assert refused.status_code == 403


async def test_a_message_parked_in_a_dlq_is_listed_and_redriven_once_its_cause_is_fixed(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    admin = await token(edge, "admin@shop.local", "Admin123!")
    template = (await edge.get(f"{TEMPLATES}/email-verification", headers=admin)).json()
    # The cause: an Admin retires every text of the verification mail.
    for text in template["variants"]:
        path = f"{TEMPLATES}/email-verification/{text['channel']}/{text['locale']}"
        assert (await edge.delete(path, headers=admin)).status_code == 204
    email = new_email()
    try:
        body = {"email": email, "password": PASSWORD, "fullName": "Parked"}
        assert (await edge.post("/api/auth/register", json=body)).status_code == 201

        async def parked() -> list[dict[str, Any]]:
            response = await edge.get("/api/admin/dlq/notify.user.registered.dlq", headers=admin)
            assert response.status_code == 200, response.text
            return [
                m for m in response.json() if isinstance(m["body"], dict) and m["body"].get("email") == email
            ]

        # Retried after 1, 2 and 4 s, then parked with why it failed.
        [message] = await eventually(parked, within=25, interval=0.5)
        assert message["error"].startswith("MissingTemplate(")
        listed = (await edge.get("/api/admin/dlq", headers=admin)).json()
        assert any(q["queue"] == "notify.user.registered.dlq" and q["messages"] >= 1 for q in listed)
        assert (await mail.get("/api/messages", params={"to": email})).json() == []
    finally:
        for text in template["variants"]:  # the fix
            edit = {k: text[k] for k in ("channel", "locale", "subject", "body")}
            assert (
                await edge.put(f"{TEMPLATES}/email-verification", json=edit, headers=admin)
            ).status_code == 200

    redriven = await edge.post("/api/admin/dlq/notify.user.registered.dlq/redrive", headers=admin)
    assert redriven.status_code == 200 and redriven.json()["redriven"] >= 1
    verification = await mailed_token(mail, email)
    verified = await edge.post("/api/auth/verify-email", json={"email": email, "token": verification})
    assert verified.status_code == 200
    assert await parked() == []
    user = await token(edge, "user@shop.local", "User123!")
    assert (await edge.get("/api/admin/dlq", headers=user)).status_code == 403
