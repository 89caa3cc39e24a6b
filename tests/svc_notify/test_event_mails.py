"""Mails from events, to the address and name on record: one per order outcome a customer cares about,
and a seller's low-stock alert."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from svc_notify.events import money
from tests.support import publisher
from tests.svc_notify.support import Notify, Send, confirmed, customer, event, mails_to, processed, sent


async def the_mail(notify: Notify, sink: httpx.AsyncClient, published: Mapping[str, Any]) -> dict[str, Any]:
    """The one mail sent for `published`, once it is out."""
    row = await sent(notify, dict(published))
    [mail] = [m for m in await mails_to(sink, row["recipient"]) if row["subject"] == m["subject"]]
    return mail


async def mailed(notify: Notify, column: str, key: object) -> int:
    return int(await notify.db.fetchval(f"SELECT count(*) FROM notifications WHERE {column} = $1", key))


def test_amounts_read_as_a_customer_writes_them() -> None:
    assert money(1250000.0) == "1,250,000 VND"
    assert money(99.5) == "99.50 VND"
    assert money(0) == "0 VND"


async def test_a_confirmed_order_is_mailed_to_its_owner_with_its_number_total_and_link(
    notify: Notify, sink: httpx.AsyncClient, send: Send
) -> None:
    user = await customer(notify, send)
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)

    mail = await the_mail(notify, sink, order)
    assert mail["to"] == user["email"]
    assert mail["subject"] == "Your order ORD-20261125-0001 is confirmed"
    assert "Hello Trần Thị Bình," in mail["body"]
    assert "(1,250,000 VND)" in mail["body"]
    assert f"/orders/{order['orderId']}" in mail["body"]
    listed = await notify.http.get(
        "/api/notifications", headers={"X-User-Id": str(user["userId"]), "X-User-Roles": "User"}
    )
    assert [item["template"] for item in listed.json()["items"]] == ["order-confirmed"]


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("payment_failed", "the payment did not go through"),
        ("payment_timeout", "it was not paid within the payment window"),
        ("cancelled_by_customer", "you cancelled it"),
        ("something_new", "it could not be completed"),
    ],
)
async def test_a_cancelled_order_is_mailed_with_why(
    notify: Notify, sink: httpx.AsyncClient, send: Send, reason: str, said: str
) -> None:
    user = await customer(notify, send)
    order = event(
        orderId=str(uuid.uuid4()),
        userId=user["userId"],
        reason=reason,
        orderNumber="ORD-20261125-0002",
        totalAmount=99000.5,
        items=[],
        discountCode=None,
    )
    await send("order.exchange", "order.cancelled", order)
    mail = await the_mail(notify, sink, order)
    assert mail["subject"] == "Your order ORD-20261125-0002 was cancelled"
    assert f"(99,000.50 VND) was cancelled: {said}." in mail["body"]


async def test_a_refund_is_mailed_with_its_amount(
    notify: Notify, sink: httpx.AsyncClient, send: Send
) -> None:
    user = await customer(notify, send)
    refund = event(
        paymentId=str(uuid.uuid4()),
        orderId=str(uuid.uuid4()),
        userId=user["userId"],
        orderNumber="ORD-20261125-0003",
        amount=300000.0,
        refundId=str(uuid.uuid4()),
        fullyRefunded=False,
    )
    await send("payment.exchange", "payment.refunded", refund)
    mail = await the_mail(notify, sink, refund)
    assert mail["subject"] == "Refund of 300,000 VND for order ORD-20261125-0003"


async def test_mails_use_the_latest_name_and_ignore_an_older_rename_arriving_late(
    notify: Notify, sink: httpx.AsyncClient, send: Send
) -> None:
    user = await customer(notify, send, name="Old Name")
    renamed = event(userId=user["userId"], updatedFields=["fullName"], fullName="New Name")
    stale = event(userId=user["userId"], updatedFields=["fullName"], fullName="Stale Name")
    stale["occurredAt"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    async with publisher("notify.user.profile.updated") as publish:
        await publish("user.exchange", "user.profile.updated", renamed)
        await publish("user.exchange", "user.profile.updated", stale)
    await processed(notify, renamed)
    await processed(notify, stale)
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)
    assert "Hello New Name," in (await the_mail(notify, sink, order))["body"]


async def test_an_order_of_a_user_never_announced_is_skipped_not_retried(notify: Notify, send: Send) -> None:
    order = confirmed({"userId": str(uuid.uuid4())})
    await send("order.exchange", "order.confirmed", order)
    await processed(notify, order)
    assert await mailed(notify, "event_id", uuid.UUID(str(order["eventId"]))) == 0


def low_stock(product_id: object, seller: Mapping[str, object] | None) -> dict[str, object]:
    return event(
        productId=str(product_id),
        variantId=None,
        currentStock=3,
        threshold=5,
        sellerId=None if seller is None else seller["userId"],
    )


async def test_a_seller_is_told_when_a_product_runs_low_by_its_name(
    notify: Notify, sink: httpx.AsyncClient, send: Send
) -> None:
    seller = await customer(notify, send, name="Demo Seller")
    product_id = uuid.uuid4()
    named = event(productId=str(product_id), sellerId=seller["userId"], name="Ấm đun nước 1.7L", price=1.0)
    await send("product.exchange", "product.created", named)
    await processed(notify, named)
    alert = low_stock(product_id, seller)
    await send("inventory.exchange", "inventory.low-stock", alert)

    mail = await the_mail(notify, sink, alert)
    assert (mail["to"], mail["subject"]) == (seller["email"], "Low stock: Ấm đun nước 1.7L")
    assert "3 left to sell, at or below the threshold of 5" in mail["body"]
    assert f"/products/{product_id}" in mail["body"]


async def test_a_product_never_announced_is_still_reported_without_its_name(
    notify: Notify, sink: httpx.AsyncClient, send: Send
) -> None:
    seller = await customer(notify, send)
    alert = low_stock(uuid.uuid4(), seller)
    await send("inventory.exchange", "inventory.low-stock", alert)
    assert (await the_mail(notify, sink, alert))["subject"] == "Low stock: One of your products"


async def test_stock_without_a_known_seller_alerts_nobody(notify: Notify, send: Send) -> None:
    alert = low_stock(uuid.uuid4(), None)
    await send("inventory.exchange", "inventory.low-stock", alert)
    await processed(notify, alert)
    assert await mailed(notify, "event_id", uuid.UUID(str(alert["eventId"]))) == 0
