"""Checkout asks svc_discount for an automatic discount only when one may apply: svc_discount says in
Redis when none exists (svc_discount/automatic.py), and an automatic discount it has just created is
never skipped."""

from __future__ import annotations

import os

from redis.asyncio import Redis

from tests.support import eventually
from tests.svc_order.conftest import ADMIN, Shop, buyer, closed_address, order_app

KEY = "discount:automatic"


async def no_automatic_discounts(shop: Shop) -> None:
    """Every active automatic discount of the session deactivated."""
    listed = await shop.discount.get(
        "/api/discounts", params={"active": "true", "pageSize": 100}, headers=ADMIN
    )
    assert listed.status_code == 200, listed.text
    for rule in listed.json()["items"]:
        if rule["autoApply"]:
            gone = await shop.discount.delete(f"/api/discounts/{rule['id']}", headers=ADMIN)
            assert gone.status_code == 204, gone.text


async def test_without_automatic_discounts_a_checkout_needs_no_discount_call_until_one_is_created(
    shop: Shop,
) -> None:
    redis = Redis.from_url(os.environ["REDIS_URL"])

    async def none_said() -> bool:
        return await redis.get(KEY) == b"0"

    try:
        await no_automatic_discounts(shop)
        await eventually(none_said)  # at once after a deactivation, else at svc_discount's next refresh
        who = buyer()
        product = await shop.new_product(price=200_000, stock=5)
        # svc_discount unreachable: only a checkout that asks it fails.
        async with order_app(shop.deps, ORDER_DISCOUNT_GRPC_URL=closed_address()) as blind:
            await shop.fill(who, (product, 1), client=blind)
            placed = await shop.checkout(who, client=blind)
            assert placed.status_code == 201, placed.text
            assert (placed.json()["discountAmount"], placed.json()["discountCode"]) == (0, None)
            await shop.fill(who, (product, 1), client=blind)
            coded = await shop.checkout(who, client=blind, discountCode="ANYCODE")
            assert coded.status_code == 503, coded.text  # a code is always asked about
            rule = await shop.coupon(autoApply=True, kind="FIXED_AMOUNT", value=10_000)
            assert await redis.get(KEY) == b"1"  # set before the creation answered
            assert (await shop.checkout(who, client=blind)).status_code == 503  # it asked
        placed = await shop.checkout(who)
        assert (placed.status_code, placed.json()["discountCode"]) == (201, rule["code"])
        await shop.discount.delete(f"/api/discounts/{rule['id']}", headers=ADMIN)
        assert await none_said()  # set before the deactivation answered
    finally:
        await redis.aclose()
