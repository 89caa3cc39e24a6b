"""Orders after checkout: who sees them, the status workflow, the payment window, sellers' views."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Publish, eventually, identity
from tests.svc_order.conftest import ADMIN, Shop, buyer, order_app, paid


async def _placed(shop: Shop, who: dict[str, str], *lines: tuple[str, int], **body: Any) -> dict[str, Any]:
    await shop.fill(who, *lines)
    placed = await shop.checkout(who, **body)
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def test_history_is_paginated_newest_first_and_filtered_by_status(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(price=10_000, stock=20)
    placed = [await _placed(shop, who, (product, n)) for n in (1, 2, 3)]

    first = (await shop.order.get("/api/orders", params={"pageSize": 2}, headers=who)).json()
    second = (await shop.order.get("/api/orders", params={"pageSize": 2, "page": 2}, headers=who)).json()

    assert (first["totalCount"], first["totalPages"], second["page"]) == (3, 2, 2)
    assert [o["id"] for o in first["items"] + second["items"]] == [p["orderId"] for p in reversed(placed)]
    assert first["items"][0]["itemCount"] == 3 and first["items"][0]["status"] == "PENDING"
    cheapest = await shop.order.get(
        "/api/orders", params={"sortBy": "totalAmount", "sortOrder": "asc"}, headers=who
    )
    assert cheapest.json()["items"][0]["id"] == placed[0]["orderId"]
    none = (await shop.order.get("/api/orders", params={"status": "SHIPPED"}, headers=who)).json()
    assert none["items"] == [] and none["totalCount"] == 0
    kettle = await shop.new_product(price=5_000, stock=5, name=f"Kettle 100%_{uuid.uuid4().hex[:6]}")
    with_kettle = await _placed(shop, who, (kettle, 1))
    numbers = {o["id"]: o["orderNumber"] for o in first["items"] + second["items"]}

    async def found(search: str) -> list[str]:
        page = (await shop.order.get("/api/orders", params={"search": search}, headers=who)).json()
        return [o["id"] for o in page["items"]]

    assert await found(numbers[placed[1]["orderId"]]) == [placed[1]["orderId"]]
    assert await found("kettle 100%_") == [with_kettle["orderId"]]
    assert await found("no such thing") == []
    trimmed = await shop.order.get("/api/orders", params={"fields": "id,totalAmount"}, headers=who)
    assert [set(o) for o in trimmed.json()["items"]] == [{"id", "totalAmount"}] * 4
    for bad in ({"status": "LOST"}, {"sortBy": "colour"}, {"pageSize": "500"}, {"fields": "id,userId"}):
        assert (await shop.order.get("/api/orders", params=bad, headers=who)).status_code == 400


async def test_another_users_order_is_404_and_an_admin_sees_it(shop: Shop) -> None:
    owner, stranger = buyer(), buyer()
    order = await _placed(shop, owner, (await shop.new_product(stock=5), 1))
    path = f"/api/orders/{order['orderId']}"
    assert (await shop.order.get(path, headers=stranger)).status_code == 404
    assert (await shop.order.post(f"{path}/cancel", headers=stranger)).status_code == 404
    assert (await shop.order.get(path, headers=ADMIN)).json()["orderNumber"] == order["orderNumber"]
    assert (await shop.order.get("/api/orders/not-an-id", headers=owner)).status_code == 404
    assert (await shop.order.get(path)).status_code == 401
    assert (await shop.order.get("/api/orders", headers=stranger)).json()["totalCount"] == 0


async def test_the_owner_cancels_before_shipping_and_the_stock_comes_back(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    coupon = await shop.coupon()
    order = await _placed(shop, who, (product, 2), discountCode=coupon["code"])

    cancelled = await shop.order.post(
        f"/api/orders/{order['orderId']}/cancel", json={"reason": "changed my mind"}, headers=who
    )

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["paymentStatus"], body["cancelReason"]) == (
        "CANCELLED",
        "CANCELLED",
        "cancelled_by_customer",
    )
    assert [h["status"] for h in body["history"]] == ["PENDING", "CANCELLED"]
    assert body["history"][-1]["note"] == "changed my mind"
    (event,) = await shop.outbox("order.cancelled", order["orderId"])
    assert event["reason"] == "cancelled_by_customer" and event["discountCode"] == coupon["code"]
    await shop.stock_becomes(product, reserved=0)
    await shop.usages_become(coupon["id"], "RELEASED")
    again = await shop.order.post(f"/api/orders/{order['orderId']}/cancel", headers=who)
    assert again.status_code == 409


async def test_an_admin_moves_a_paid_order_to_delivered_and_no_one_cancels_it_after_shipping(
    shop: Shop, payments: Publish
) -> None:
    who = buyer()
    order = await _placed(shop, who, (await shop.new_product(stock=5), 1))
    path = f"/api/orders/{order['orderId']}"
    early = await shop.order.patch(f"{path}/status", json={"status": "SHIPPED"}, headers=ADMIN)
    assert early.status_code == 409  # PENDING cannot ship
    await paid(payments, order["orderId"], order["totalAmount"])
    await shop.status_becomes(who, order["orderId"], "CONFIRMED")

    for status in ("PROCESSING", "SHIPPED"):
        moved = await shop.order.patch(f"{path}/status", json={"status": status}, headers=ADMIN)
        assert moved.status_code == 200 and moved.json()["status"] == status
    assert (await shop.order.post(f"{path}/cancel", headers=who)).status_code == 409
    assert (
        await shop.order.patch(f"{path}/status", json={"status": "DELIVERED"}, headers=who)
    ).status_code == 403
    delivered = await shop.order.patch(
        f"{path}/status", json={"status": "DELIVERED", "note": "left at door"}, headers=ADMIN
    )
    history = delivered.json()["history"]
    assert [h["status"] for h in history] == ["PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "DELIVERED"]
    assert history[-1]["note"] == "left at door"
    refund = await shop.order.patch(f"{path}/status", json={"status": "REFUNDED"}, headers=ADMIN)
    assert refund.status_code == 400  # refunds go through svc_payment
    assert (
        await shop.order.patch(
            f"/api/orders/{uuid.uuid4()}/status", json={"status": "SHIPPED"}, headers=ADMIN
        )
    ).status_code == 404


async def test_a_refund_ends_a_paid_order_and_a_late_payment_changes_nothing(
    shop: Shop, payments: Publish
) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    order = await _placed(shop, who, (product, 1))
    payment = str(uuid.uuid4())
    success = {
        "paymentId": payment,
        "orderId": order["orderId"],
        "amount": order["totalAmount"],
        "transactionId": "T1",
    }
    await payments("payment.exchange", "payment.success", success)
    await shop.status_becomes(who, order["orderId"], "CONFIRMED")
    await payments("payment.exchange", "payment.success", success)  # the same payment again: nothing new
    await payments(
        "payment.exchange", "payment.refunded", {"paymentId": payment, "orderId": order["orderId"]}
    )
    refunded = await shop.status_becomes(who, order["orderId"], "REFUNDED")
    assert refunded["paymentStatus"] == "REFUNDED"
    assert [h["status"] for h in refunded["history"]] == ["PENDING", "CONFIRMED", "REFUNDED"]
    assert len(await shop.outbox("order.confirmed", order["orderId"])) == 1

    cancelled = await _placed(shop, who, (product, 1))
    await shop.order.post(f"/api/orders/{cancelled['orderId']}/cancel", headers=who)
    await paid(payments, cancelled["orderId"], cancelled["totalAmount"])

    async def noted() -> bool:
        history = (await shop.order_of(who, cancelled["orderId"]))["history"]
        return len(history) == 3 and "succeeded while CANCELLED" in history[-1]["note"]

    await eventually(noted)
    late = await shop.order_of(who, cancelled["orderId"])
    assert late["status"] == "CANCELLED" and late["transactionId"]
    assert await shop.outbox("order.confirmed", cancelled["orderId"]) == []


async def test_an_order_not_paid_within_its_window_is_cancelled_and_its_stock_released(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    async with order_app(shop.deps, ORDER_PAYMENT_WINDOW_SECONDS="1") as short:
        await shop.fill(who, (product, 2), client=short)
        placed = (await shop.checkout(who, client=short)).json()
        assert (await shop.stock(product))["reserved"] == 2

        order = await shop.status_becomes(who, placed["orderId"], "CANCELLED")

    assert order["cancelReason"] == "payment_timeout" and order["paymentUrl"] is None
    (event,) = await shop.outbox("order.cancelled", placed["orderId"])
    assert event["reason"] == "payment_timeout" and event["items"][0]["quantity"] == 2
    await shop.stock_becomes(product, reserved=0)


async def test_a_seller_sees_the_orders_holding_its_products_with_only_its_lines(shop: Shop) -> None:
    seller = identity("Seller")
    mine = await shop.new_product(price=20_000, stock=5, seller=seller)
    theirs = await shop.new_product(price=30_000, stock=5)
    order = await _placed(shop, buyer(), (mine, 2), (theirs, 1))
    await _placed(shop, buyer(), (theirs, 1))

    seen = (await shop.order.get("/api/orders/seller", headers=seller)).json()

    assert seen["totalCount"] == 1
    (only,) = seen["items"]
    assert only["id"] == order["orderId"] and only["sellerTotal"] == 40_000
    assert [i["productId"] for i in only["items"]] == [mine]
    assert (await shop.order.get("/api/orders/seller", headers=buyer())).status_code == 403
    as_admin = await shop.order.get(
        "/api/orders/seller", params={"sellerId": seller["X-User-Id"]}, headers=ADMIN
    )
    assert as_admin.json()["totalCount"] == 1
    # Searching by a product of the order finds it, even one another seller sold in it.
    theirs_name = (await shop.product.get(f"/api/products/{theirs}")).json()["name"]
    for search, count in ((theirs_name, 1), (order["orderNumber"], 1), ("nothing like it", 0)):
        page = await shop.order.get("/api/orders/seller", params={"search": search}, headers=seller)
        assert page.json()["totalCount"] == count, search
