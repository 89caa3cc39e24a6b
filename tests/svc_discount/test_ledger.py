"""Validating and applying discounts over the real gRPC server and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from protos import discount_pb2 as pb
from svc_discount import events as discount_events
from svc_discount.ledger import expire_held
from tests.orders import aborted, cancelled
from tests.support import Publish, drained, eventually, publisher, repeated
from tests.svc_discount.conftest import ADMIN, Stack, coupon


def apply(
    code: str,
    subtotal: str = "500000",
    order: uuid.UUID | None = None,
    user: uuid.UUID | None = None,
    lines: list[pb.OrderLine] | None = None,
) -> pb.ApplyDiscountRequest:
    return pb.ApplyDiscountRequest(
        order_id=str(order or uuid.uuid4()),
        code=code,
        user_id=str(user or uuid.uuid4()),
        subtotal=subtotal,
        lines=lines or [],
    )


async def used_count(stack: Stack, discount: dict[str, object]) -> int:
    return await stack.db.fetchval(
        "SELECT used_count FROM discounts WHERE id = $1", uuid.UUID(str(discount["id"]))
    )


async def test_a_usage_limit_of_ten_holds_under_two_hundred_concurrent_applies(discounts: Stack) -> None:
    limited = await coupon(discounts, usageLimit=10)
    answers = await asyncio.gather(
        *(discounts.stub.ApplyDiscount(apply(str(limited["code"]))) for _ in range(200))
    )
    assert sum(a.applied for a in answers) == 10
    assert {a.reason for a in answers if not a.applied} == {"usage_limit_reached"}
    assert await used_count(discounts, limited) == 10
    reserved = await discounts.db.fetchval(
        "SELECT count(*) FROM discount_usages WHERE discount_id = $1 AND state = 'RESERVED'",
        uuid.UUID(str(limited["id"])),
    )
    assert reserved == 10


async def test_applying_again_for_the_same_order_returns_the_first_answer(discounts: Stack) -> None:
    fixed = await coupon(discounts, kind="FIXED_AMOUNT", value=50000, usageLimit=5)
    order, user = uuid.uuid4(), uuid.uuid4()
    answers = await asyncio.gather(
        *(
            discounts.stub.ApplyDiscount(apply(str(fixed["code"]).lower(), order=order, user=user))
            for _ in range(20)
        )
    )
    assert all(a.applied and a.discount_amount == "50000.00" for a in answers)
    assert sum(not a.existing for a in answers) == 1
    assert await used_count(discounts, fixed) == 1


async def test_a_per_user_limit_counts_each_users_orders(discounts: Stack) -> None:
    once = await coupon(discounts, perUserLimit=1)
    user = uuid.uuid4()
    first = await discounts.stub.ApplyDiscount(apply(str(once["code"]), user=user))
    second = await discounts.stub.ApplyDiscount(apply(str(once["code"]), user=user))
    other = await discounts.stub.ApplyDiscount(apply(str(once["code"])))
    assert first.applied and not second.applied and second.reason == "user_limit_reached" and other.applied
    check = await discounts.stub.ValidateDiscount(
        pb.ValidateDiscountRequest(code=str(once["code"]), user_id=str(user), subtotal="100000")
    )
    assert not check.valid and check.reason == "user_limit_reached"


@pytest.mark.parametrize(
    ("fields", "subtotal", "amount", "reason"),
    [
        ({"kind": "PERCENTAGE", "value": 10}, "250000.50", "25000.05", ""),
        ({"kind": "PERCENTAGE", "value": 50, "maxDiscount": 100000}, "1000000", "100000.00", ""),
        ({"kind": "FIXED_AMOUNT", "value": 80000}, "50000", "50000", ""),
        (
            {"kind": "FIXED_AMOUNT", "value": 80000, "minSubtotal": 300000},
            "299999.99",
            "0",
            "min_subtotal_not_met",
        ),
        ({"active": False}, "100000", "0", "inactive"),
        ({"endsAt": "2020-01-02T00:00:00Z", "startsAt": "2020-01-01T00:00:00Z"}, "100000", "0", "expired"),
    ],
)
async def test_validation_prices_the_discount_by_its_rules(
    discounts: Stack, fields: dict[str, object], subtotal: str, amount: str, reason: str
) -> None:
    made = await coupon(discounts, **fields)
    answer = await discounts.stub.ValidateDiscount(
        pb.ValidateDiscountRequest(code=str(made["code"]), subtotal=subtotal)
    )
    assert (answer.valid, answer.discount_amount, answer.reason) == (not reason, amount, reason)


async def test_a_product_scoped_discount_counts_only_its_products(discounts: Stack) -> None:
    shoe, hat = uuid.uuid4(), uuid.uuid4()
    scoped = await coupon(discounts, value=20, scope="PRODUCTS", productIds=[str(shoe)])
    lines = [
        pb.OrderLine(product_id=str(shoe), quantity=2, unit_price="100000"),
        pb.OrderLine(product_id=str(hat), quantity=1, unit_price="300000"),
    ]
    answer = await discounts.stub.ValidateDiscount(
        pb.ValidateDiscountRequest(code=str(scoped["code"]), subtotal="500000", lines=lines)
    )
    assert answer.valid and answer.discount_amount == "40000.00"
    without = await discounts.stub.ValidateDiscount(
        pb.ValidateDiscountRequest(code=str(scoped["code"]), subtotal="500000")
    )
    assert not without.valid and without.reason == "lines_required"


async def test_without_a_code_the_best_automatic_discount_applies(discounts: Stack) -> None:
    # Automatic rules are global: a threshold no other test's subtotal reaches keeps this one apart.
    floor = 900_000_000
    await coupon(discounts, autoApply=True, kind="FIXED_AMOUNT", value=100000, minSubtotal=floor)
    best = await coupon(discounts, autoApply=True, kind="PERCENTAGE", value=1, minSubtotal=floor)
    answer = await discounts.stub.ApplyDiscount(
        pb.ApplyDiscountRequest(order_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), subtotal=str(floor))
    )
    assert answer.applied and answer.code == best["code"] and answer.discount_amount == "9000000.00"
    none = await discounts.stub.ValidateDiscount(pb.ValidateDiscountRequest(subtotal="1"))
    assert not none.valid


async def test_a_flash_sale_campaign_bounds_its_coupons_by_its_window(discounts: Stack) -> None:
    now = datetime.now(UTC)
    window = {
        "name": "Flash",
        "kind": "FLASH_SALE",
        "startsAt": (now - timedelta(hours=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }
    running = await discounts.http.post("/api/campaigns", json=window, headers=ADMIN)
    assert running.status_code == 201
    flash = await coupon(discounts, campaignId=running.json()["id"])
    check = pb.ValidateDiscountRequest(code=str(flash["code"]), subtotal="100000")
    assert (await discounts.stub.ValidateDiscount(check)).valid
    stopped = await discounts.http.delete(f"/api/campaigns/{running.json()['id']}", headers=ADMIN)
    assert stopped.status_code == 204
    assert (await discounts.stub.ValidateDiscount(check)).reason == "campaign_inactive"
    ended = await discounts.http.patch(
        f"/api/campaigns/{running.json()['id']}",
        json={"active": True, "endsAt": (now - timedelta(minutes=1)).isoformat()},
        headers=ADMIN,
    )
    assert ended.status_code == 200 and ended.json()["discountCount"] == 1
    assert (await discounts.stub.ValidateDiscount(check)).reason == "campaign_not_running"


@pytest.fixture(scope="module")
async def publish(discounts: Stack) -> AsyncIterator[Publish]:
    async with publisher("discount.order.cancelled") as send:
        yield send


async def test_a_confirmed_order_records_the_usage_and_a_cancelled_one_frees_it(
    discounts: Stack, publish: Publish
) -> None:
    limited = await coupon(discounts, usageLimit=2)
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    for order in (kept, dropped):
        assert (await discounts.stub.ApplyDiscount(apply(str(limited["code"]), order=order))).applied
    assert not (await discounts.stub.ApplyDiscount(apply(str(limited["code"])))).applied
    for _ in range(2):
        await publish("order.exchange", "order.confirmed", {"orderId": str(kept), "items": []})
        await publish(
            "order.exchange", "order.cancelled", {"orderId": str(dropped), "reason": "x", "items": []}
        )

    async def settled() -> bool:
        states = dict(
            await discounts.db.fetch(
                "SELECT order_id, state FROM discount_usages WHERE order_id = ANY($1)", [kept, dropped]
            )
        )
        return states == {kept: "USED", dropped: "RELEASED"}

    await eventually(settled)
    await eventually(lambda: drained("discount.order.confirmed", "discount.order.cancelled"))
    assert await used_count(discounts, limited) == 1
    assert (await discounts.stub.ApplyDiscount(apply(str(limited["code"])))).applied


async def test_malformed_calls_are_invalid_arguments(discounts: Stack) -> None:
    import grpc

    for request in (
        pb.ApplyDiscountRequest(order_id="x", code="A", user_id=str(uuid.uuid4()), subtotal="1"),
        pb.ApplyDiscountRequest(
            order_id=str(uuid.uuid4()), code="A", user_id=str(uuid.uuid4()), subtotal="1.001"
        ),
        pb.ApplyDiscountRequest(
            order_id=str(uuid.uuid4()), code="A", user_id=str(uuid.uuid4()), subtotal="-5"
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await discounts.stub.ApplyDiscount(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def _usage_state(stack: Stack, order: uuid.UUID) -> str:
    return await stack.db.fetchval("SELECT state FROM discount_usages WHERE order_id = $1", order)


async def test_cancelling_a_confirmed_order_gives_the_buyer_the_coupon_back_once(
    discounts: Stack, publish: Publish
) -> None:
    once = await coupon(discounts, perUserLimit=1, usageLimit=5)
    code, user, order = str(once["code"]), uuid.uuid4(), uuid.uuid4()
    assert (await discounts.stub.ApplyDiscount(apply(code, order=order, user=user))).applied
    await publish("order.exchange", "order.confirmed", {"orderId": str(order), "items": []})
    await eventually(lambda: _is(discounts, order, "USED"))
    refused = await discounts.stub.ApplyDiscount(apply(code, user=user))
    assert not refused.applied and refused.reason == "user_limit_reached"
    # Redelivered as is, then sent again under another event id: the usage is freed once.
    await repeated(publish, "order.exchange", cancelled(order))
    await eventually(lambda: _is(discounts, order, "RELEASED"))
    await eventually(lambda: drained("discount.order.cancelled"))
    assert await used_count(discounts, once) == 0
    assert (await discounts.stub.ApplyDiscount(apply(code, user=user))).applied
    assert await used_count(discounts, once) == 1


async def test_an_aborted_checkout_gives_its_coupon_back_once(discounts: Stack, publish: Publish) -> None:
    once = await coupon(discounts, perUserLimit=1, usageLimit=5)
    code, user, order = str(once["code"]), uuid.uuid4(), uuid.uuid4()
    assert (await discounts.stub.ApplyDiscount(apply(code, order=order, user=user))).applied
    # The checkout failed after holding the usage: no order will ever confirm or cancel it.
    await repeated(publish, "order.exchange", aborted(order, discount_code=code))
    await eventually(lambda: _is(discounts, order, "RELEASED"))
    await eventually(lambda: drained("discount.checkout.aborted"))
    assert await used_count(discounts, once) == 0
    assert (await discounts.stub.ApplyDiscount(apply(code, user=user))).applied


async def test_a_usage_whose_order_never_settled_is_freed_after_its_hold(discounts: Stack) -> None:
    once = await coupon(discounts, perUserLimit=1)
    code, user, stale, fresh = str(once["code"]), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await discounts.stub.ApplyDiscount(apply(code, order=stale, user=user))).applied
    assert (await discounts.stub.ApplyDiscount(apply(code, order=fresh))).applied
    # Its order's confirmation or cancellation never arrived, and the hold (25 minutes) has passed.
    await discounts.db.execute(
        "UPDATE discount_usages SET created_at = now() - interval '26 minutes' WHERE order_id = $1", stale
    )
    # The service's own job frees it; runs racing it free nothing more.
    racing = await asyncio.gather(*(expire_held(discounts.db, timedelta(minutes=25)) for _ in range(5)))
    await eventually(lambda: _is(discounts, stale, "RELEASED"))
    assert sum(racing) <= 1
    assert await expire_held(discounts.db, timedelta(minutes=25)) == 0
    assert await _usage_state(discounts, fresh) == "RESERVED"
    assert await used_count(discounts, once) == 1
    assert (await discounts.stub.ApplyDiscount(apply(code, user=user))).applied


async def _is(stack: Stack, order: uuid.UUID, state: str) -> bool:
    return await _usage_state(stack, order) == state


async def _outcome(stack: Stack, code: str, order: uuid.UUID, *steps: str) -> None:
    """The order's outcomes as the consumer handles them, in this order (their queues may reorder them);
    `other`: another order applies the code."""
    for step in steps:
        if step == "other":
            assert (await stack.stub.ApplyDiscount(apply(code))).applied
            continue
        async with stack.db.acquire() as conn, conn.transaction():
            if step == "confirmed":
                await discount_events.order_confirmed(conn, discount_events.OrderConfirmed(order_id=order))
            elif step == "cancelled":
                await discount_events.order_cancelled(conn, discount_events.OrderCancelled(order_id=order))
            else:
                await conn.execute(
                    "UPDATE discount_usages SET created_at = now() - interval '26 minutes'"
                    " WHERE order_id = $1",
                    order,
                )
        if step == "expired":
            assert await expire_held(stack.db, timedelta(minutes=25)) >= 1


@pytest.mark.parametrize(
    ("steps", "state", "count"),
    [
        # Paid with the coupon after its hold ran out and another order took the only use: both count.
        (("expired", "other", "confirmed"), "USED", 2),
        # A cancellation handled before a delayed confirmation: the coupon stays free.
        (("cancelled", "confirmed"), "RELEASED", 0),
        (("expired", "cancelled", "confirmed"), "RELEASED", 0),
        (("confirmed", "cancelled", "confirmed"), "RELEASED", 0),
    ],
)
async def test_a_usage_ends_as_its_orders_outcomes_say_in_whatever_order_they_arrive(
    discounts: Stack, steps: tuple[str, ...], state: str, count: int
) -> None:
    limited = await coupon(discounts, usageLimit=1)
    code, order = str(limited["code"]), uuid.uuid4()
    assert (await discounts.stub.ApplyDiscount(apply(code, order=order))).applied
    await _outcome(discounts, code, order, *steps)
    assert await _usage_state(discounts, order) == state
    assert await used_count(discounts, limited) == count
