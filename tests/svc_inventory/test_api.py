"""The REST API and the events inventory consumes, through the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from protos import inventory_pb2 as pb
from tests.orders import aborted, cancelled
from tests.support import Publish, drained, eventually, identity, publisher, repeated
from tests.svc_inventory.conftest import ADMIN, Stack, books, line, reserve, seller_headers, stocked

USER = identity("User")


@pytest.fixture(scope="module")
async def publish(stack: Stack) -> AsyncIterator[Publish]:
    async with publisher("inventory.product.created") as send:
        yield send


async def known_product(stack: Stack, publish: Publish, seller: uuid.UUID) -> uuid.UUID:
    product = uuid.uuid4()
    await publish("product.exchange", "product.created", {"productId": str(product), "sellerId": str(seller)})
    await eventually(lambda: _status(stack, product, 200))
    return product


async def _status(stack: Stack, product: uuid.UUID, status: int) -> bool:
    return (await stack.http.get(f"/api/inventory/{product}")).status_code == status


async def test_anyone_reads_a_products_stock_and_an_unknown_product_is_404(stack: Stack) -> None:
    product = await stocked(stack, 12, threshold=3)
    assert (await reserve(stack, uuid.uuid4(), line(product, 2))).reserved
    response = await stack.http.get(f"/api/inventory/{product}")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("productId", "available", "reserved", "onHand", "lowStockThreshold")} == {
        "productId": str(product),
        "available": 10,
        "reserved": 2,
        "onHand": 12,
        "lowStockThreshold": 3,
    }
    assert body["updatedAt"]
    assert (await stack.http.get(f"/api/inventory/{uuid.uuid4()}")).status_code == 404
    assert (await stack.http.get("/api/inventory/not-a-uuid")).status_code == 404
    # An empty parameter is an absent one (the API's convention, declared in its document).
    assert (await stack.http.get(f"/api/inventory/{product}", params={"variantId": ""})).json() == body


async def test_the_seller_of_a_product_sets_its_stock_and_other_sellers_cannot(
    stack: Stack, publish: Publish
) -> None:
    seller = uuid.uuid4()
    product = await known_product(stack, publish, seller)
    assert (await stack.http.get(f"/api/inventory/{product}")).json()["onHand"] == 0
    body = {"quantity": 30, "lowStockThreshold": 5}
    other = await stack.http.put(f"/api/inventory/{product}", json=body, headers=seller_headers(uuid.uuid4()))
    assert other.status_code == 403
    user = await stack.http.put(f"/api/inventory/{product}", json=body, headers=USER)
    assert user.status_code == 403
    guest = await stack.http.put(f"/api/inventory/{product}", json=body)
    assert guest.status_code == 401
    own = await stack.http.put(f"/api/inventory/{product}", json=body, headers=seller_headers(seller))
    assert own.status_code == 200 and own.json()["available"] == 30
    assert (await reserve(stack, uuid.uuid4(), line(product, 30))).reserved


async def test_a_seller_cannot_create_stock_for_a_product_inventory_does_not_know(stack: Stack) -> None:
    response = await stack.http.put(
        f"/api/inventory/{uuid.uuid4()}", json={"quantity": 5}, headers=seller_headers(uuid.uuid4())
    )
    assert response.status_code == 404


async def test_on_hand_cannot_go_below_what_reservations_hold(stack: Stack) -> None:
    product = await stocked(stack, 10)
    assert (await reserve(stack, uuid.uuid4(), line(product, 7))).reserved
    refused = await stack.http.put(f"/api/inventory/{product}", json={"quantity": 6}, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["error"] == "BusinessRuleViolation"
    lowered = await stack.http.put(f"/api/inventory/{product}", json={"quantity": 8}, headers=ADMIN)
    assert lowered.status_code == 200 and lowered.json()["available"] == 1
    b = await books(stack, product)
    assert (b.on_hand, b.reserved, b.redis_available) == (8, 7, 1)
    raised = await stack.http.put(f"/api/inventory/{product}", json={"quantity": 20}, headers=ADMIN)
    assert raised.json()["available"] == 13 and (await books(stack, product)).redis_available == 13


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": -1}, "quantity"),
        ({"quantity": "5"}, "quantity"),
        ({}, "quantity"),
        ({"quantity": 1, "x": 1}, "x"),
    ],
)
async def test_bad_stock_updates_are_400_and_change_nothing(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    product = await stocked(stack, 4)
    response = await stack.http.put(f"/api/inventory/{product}", json=body, headers=ADMIN)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
    assert (await books(stack, product)).on_hand == 4


async def test_low_stock_alerts_once_per_crossing_and_admins_list_low_rows(stack: Stack) -> None:
    product, seller = await stocked(stack, 10, threshold=4), uuid.uuid4()
    await stack.db.execute("INSERT INTO products (product_id, seller_id) VALUES ($1, $2)", product, seller)

    async def alerts() -> int:
        sellers = await stack.db.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->>'sellerId' AS seller FROM outbox"
            " WHERE routing_key = 'inventory.low-stock'"
            " AND convert_from(payload, 'UTF8')::jsonb->>'productId' = $1",
            str(product),
        )
        # Each alert names the seller to tell.
        assert {row["seller"] for row in sellers} <= {str(seller)}
        return len(sellers)

    orders = [uuid.uuid4() for _ in range(4)]
    assert (await reserve(stack, orders[0], line(product, 5))).reserved
    assert await alerts() == 0
    assert (await reserve(stack, orders[1], line(product, 2))).reserved
    assert (await reserve(stack, orders[2], line(product, 1))).reserved
    assert await alerts() == 1
    await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(orders[0])))
    assert await alerts() == 1
    assert (await reserve(stack, orders[3], line(product, 6))).reserved
    assert await alerts() == 2
    listed = await stack.http.get("/api/inventory/low-stock?pageSize=100", headers=ADMIN)
    assert listed.status_code == 200
    assert str(product) in {item["productId"] for item in listed.json()["items"]}
    assert (await stack.http.get("/api/inventory/low-stock", headers=USER)).status_code == 403


async def test_availability_is_announced_each_time_a_product_crosses_zero(stack: Stack) -> None:
    product = await stocked(stack, 2)

    async def announced() -> list[bool]:
        rows = await stack.db.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb->>'available' AS available FROM outbox"
            " WHERE routing_key = 'inventory.availability-changed'"
            " AND convert_from(payload, 'UTF8')::jsonb->>'productId' = $1 ORDER BY id",
            str(product),
        )
        return [row["available"] == "true" for row in rows]

    assert await announced() == [True]  # stocked from nothing
    orders = [uuid.uuid4() for _ in range(3)]
    assert (await reserve(stack, orders[0], line(product, 1))).reserved
    assert await announced() == [True]
    assert (await reserve(stack, orders[1], line(product, 1))).reserved
    assert await announced() == [True, False]  # the last unit is held
    await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(orders[0])))
    assert await announced() == [True, False, True]
    # A variant in stock keeps the product available while its own row runs out; then the variant does.
    variant = {"quantity": 3, "variantId": str(uuid.uuid4())}
    assert (await stack.http.put(f"/api/inventory/{product}", json=variant, headers=ADMIN)).status_code == 200
    assert (await reserve(stack, orders[2], line(product, 1))).reserved
    assert await announced() == [True, False, True]
    emptied = await stack.http.put(
        f"/api/inventory/{product}", json={**variant, "quantity": 0}, headers=ADMIN
    )
    assert emptied.status_code == 200
    assert await announced() == [True, False, True, False]


async def test_order_events_commit_and_release_reservations_once(stack: Stack, publish: Publish) -> None:
    product = await stocked(stack, 10)
    confirmed, cancelled = uuid.uuid4(), uuid.uuid4()
    for order in (confirmed, cancelled):
        assert (await reserve(stack, order, line(product, 3))).reserved
    event = {"orderId": str(confirmed), "userId": str(uuid.uuid4()), "items": []}
    for _ in range(2):
        await publish("order.exchange", "order.confirmed", event)
        await publish(
            "order.exchange", "order.cancelled", {**event, "orderId": str(cancelled), "reason": "x"}
        )

    async def settled() -> bool:
        b = await books(stack, product)
        return (b.on_hand, b.reserved, b.redis_available) == (7, 0, 7)

    await eventually(settled)
    await eventually(lambda: drained("inventory.order.confirmed", "inventory.order.cancelled"))
    assert await settled()


async def test_a_deleted_product_can_no_longer_be_reserved(stack: Stack, publish: Publish) -> None:
    seller = uuid.uuid4()
    product = await known_product(stack, publish, seller)
    await stack.http.put(f"/api/inventory/{product}", json={"quantity": 5}, headers=ADMIN)
    await publish("product.exchange", "product.deleted", {"productId": str(product), "sellerId": str(seller)})
    await eventually(lambda: _status(stack, product, 404))
    refused = await reserve(stack, uuid.uuid4(), line(product, 1))
    assert not refused.reserved and refused.reason == "unavailable_product"


async def _handled(stack: Stack, event_id: uuid.UUID) -> bool:
    return bool(await stack.db.fetchval("SELECT true FROM inbox WHERE event_id = $1", event_id))


async def test_cancelling_a_confirmed_order_puts_its_stock_back_once(stack: Stack, publish: Publish) -> None:
    product, other = await stocked(stack, 10), await stocked(stack, 4)
    order = uuid.uuid4()
    assert (await reserve(stack, order, line(product, 3), line(other, 4))).reserved
    await publish("order.exchange", "order.confirmed", {"orderId": str(order), "items": []})
    await eventually(lambda: _books_are(stack, product, on_hand=7, redis=7))
    # Redelivered as is, then sent again under another event id: the units come back once.
    await repeated(publish, "order.exchange", cancelled(order))
    await eventually(lambda: _books_are(stack, product, on_hand=10, redis=10))
    await eventually(lambda: _books_are(stack, other, on_hand=4, redis=4))
    await eventually(lambda: drained("inventory.order.cancelled"))
    assert await _books_are(stack, product, on_hand=10, redis=10)
    assert (await books(stack, product)).committed_lines == 0
    state = await stack.db.fetchval("SELECT state FROM reservations WHERE order_id = $1", order)
    assert state == "RETURNED"
    returns = await stack.db.fetch(
        "SELECT product_id, on_hand_delta, reserved_delta FROM stock_log"
        " WHERE order_id = $1 AND kind = 'RETURN'",
        order,
    )
    assert sorted((r["product_id"], r["on_hand_delta"], r["reserved_delta"]) for r in returns) == sorted(
        [(product, 3, 0), (other, 4, 0)]
    )
    # Sold out at a threshold of 0 by the order, back above it now: the low-stock alert is armed again.
    assert await stack.db.fetchval("SELECT low_alerted FROM stock WHERE product_id = $1", other) is False
    # A return can be sold again, and the order it came from stays finished.
    assert (await reserve(stack, uuid.uuid4(), line(other, 4))).reserved
    again = await reserve(stack, order, line(product, 3))
    assert not again.reserved and again.existing and again.state == pb.RETURNED


async def test_cancels_racing_for_one_confirmed_order_return_its_stock_once(stack: Stack) -> None:
    product = await stocked(stack, 10)
    order = uuid.uuid4()
    assert (await reserve(stack, order, line(product, 2))).reserved
    assert (await stack.stub.CommitStock(pb.CommitStockRequest(order_id=str(order)))).committed
    states = await asyncio.gather(*(stack.inventory.cancel(order, "cancelled") for _ in range(20)))
    assert set(states) == {"RETURNED"}
    assert await _books_are(stack, product, on_hand=10, redis=10)
    moves = await stack.db.fetchval(
        "SELECT count(*) FROM stock_log WHERE order_id = $1 AND kind = 'RETURN'", order
    )
    assert moves == 1


async def test_cancelling_an_order_whose_reservation_was_already_released_gives_nothing_back(
    stack: Stack, publish: Publish
) -> None:
    product = await stocked(stack, 10)
    order = uuid.uuid4()
    assert (await reserve(stack, order, line(product, 3))).reserved
    assert (await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(order)))).released
    cancel = cancelled(order)
    await publish("order.exchange", "order.cancelled", msgspec.json.encode(cancel))
    await eventually(lambda: _handled(stack, cancel.event_id))
    assert await _books_are(stack, product, on_hand=10, redis=10)
    assert await stack.db.fetchval("SELECT state FROM reservations WHERE order_id = $1", order) == "RELEASED"
    kinds = await stack.db.fetchval(
        "SELECT array_agg(kind ORDER BY id) FROM stock_log WHERE order_id = $1", order
    )
    assert kinds == ["RESERVE", "RELEASE"]


async def test_an_aborted_checkout_releases_the_stock_it_held_once(stack: Stack, publish: Publish) -> None:
    product = await stocked(stack, 10)
    order = uuid.uuid4()
    assert (await reserve(stack, order, line(product, 3))).reserved
    # Its ReleaseStock never arrived (svc_inventory was unreachable): the event is the undo.
    await repeated(publish, "order.exchange", aborted(order, "checkout abandoned"))
    await eventually(lambda: _books_are(stack, product, on_hand=10, redis=10))
    await eventually(lambda: drained("inventory.checkout.aborted"))
    assert await stack.db.fetchval("SELECT state FROM reservations WHERE order_id = $1", order) == "RELEASED"
    moves = await stack.db.fetch("SELECT kind, note FROM stock_log WHERE order_id = $1 ORDER BY id", order)
    assert [(m["kind"], m["note"]) for m in moves][1:] == [("RELEASE", "checkout abandoned")]


async def _books_are(stack: Stack, product: uuid.UUID, on_hand: int, redis: int) -> bool:
    b = await books(stack, product)
    return (b.on_hand, b.reserved, b.redis_available) == (on_hand, 0, redis)
