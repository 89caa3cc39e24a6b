"""Idempotency-Key on checkout: replay, conflicting bodies, concurrent duplicates, per-user scope."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from svc_order import idempotency
from tests.svc_order.conftest import ADDRESS, Shop, buyer


async def test_the_same_key_and_body_replays_the_first_answer(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 2))
    key = str(uuid.uuid4())

    first = await shop.checkout(who, key=key)
    # The same body with its keys in another order and other spacing is the same request.
    again = await shop.order.post(
        "/api/orders/checkout",
        content=f'{{ "paymentMethod": "vnpay",   "shippingAddress": {_json(ADDRESS)} }}',
        headers={**who, "Idempotency-Key": key, "Content-Type": "application/json"},
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert (await shop.stock(product))["reserved"] == 2
    orders = (await shop.order.get("/api/orders", headers=who)).json()
    assert orders["totalCount"] == 1


async def test_the_same_key_with_another_body_is_a_409_and_changes_nothing(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 1))
    key = str(uuid.uuid4())
    assert (await shop.checkout(who, key=key)).status_code == 201
    await shop.fill(who, (product, 1))

    conflict = await shop.checkout(who, key=key, paymentMethod="momo")

    assert conflict.status_code == 409 and conflict.json()["error"] == "Conflict"
    assert len((await shop.order.get("/api/cart", headers=who)).json()["items"]) == 1
    assert (await shop.stock(product))["reserved"] == 1


async def test_twenty_concurrent_identical_requests_make_one_order(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=50)
    await shop.fill(who, (product, 3))
    key = str(uuid.uuid4())

    answers = await asyncio.gather(*(shop.checkout(who, key=key) for _ in range(20)))

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert (await shop.stock(product))["reserved"] == 3
    assert (await shop.order.get("/api/orders", headers=who)).json()["totalCount"] == 1


async def test_a_refusal_is_replayed_too_but_an_outage_is_not_stored(shop: Shop) -> None:
    who = buyer()
    key = str(uuid.uuid4())
    empty = await shop.checkout(who, key=key)
    assert empty.status_code == 422
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 1))
    # The key already has its answer: the cart filled since does not matter (use a new key for it).
    replayed = await shop.checkout(who, key=key)
    assert replayed.status_code == 422 and replayed.headers["idempotent-replayed"] == "true"
    assert (await shop.checkout(who, key=str(uuid.uuid4()))).status_code == 201


async def test_keys_belong_to_their_user_and_must_be_sane(shop: Shop) -> None:
    product = await shop.new_product(stock=5)
    key = str(uuid.uuid4())
    first, second = buyer(), buyer()
    for who in (first, second):
        await shop.fill(who, (product, 1))
    one = (await shop.checkout(first, key=key)).json()
    two = (await shop.checkout(second, key=key)).json()
    assert one["orderId"] != two["orderId"]
    assert (await shop.checkout(first, key="x" * 256)).status_code == 400
    assert (
        await shop.order.post(
            "/api/orders/checkout", json={}, headers={**first, "Idempotency-Key": b"caf\xc3\xa9"}
        )
    ).status_code == 400


async def test_a_double_click_without_a_key_still_orders_the_cart_once(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 1))
    answers = await asyncio.gather(shop.checkout(who), shop.checkout(who))
    assert sorted(a.status_code for a in answers) == [201, 422]
    assert (await shop.stock(product))["reserved"] == 1


def _json(value: object) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=3).decode()


async def test_keys_are_kept_a_day_then_forgotten(shop: Shop) -> None:
    user = uuid.uuid4()
    await shop.db.execute(
        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, response, created_at)"
        " SELECT $1, k, '\\x00', 201, '{}', now() - make_interval(hours => h)"
        " FROM (VALUES ('day-old', 23), ('too-old', 25)) AS v(k, h)",
        user,
    )
    async with shop.db.acquire() as conn:
        await idempotency.forget_old(conn, 24)
    kept = await shop.db.fetch("SELECT key FROM idempotency_keys WHERE user_id = $1", user)
    assert [row["key"] for row in kept] == ["day-old"]
