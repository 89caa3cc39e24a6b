"""Crashed checkouts: the intent recorded before anything is held, the recovery that gives back what a
dead checkout held (exactly once), and the order refused once that has happened.

A checkout is caught in the window a crash would hit by a lock on `orders` taken from outside: it has
recorded its intent, holds its stock and discount usage, and waits to create its order. From there a
test kills the process (a real `python -m svc_order`), or plays the recovery job against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kit import db
from svc_order import intents
from svc_order.config import OrderConfig
from svc_order.downstream import Downstream
from tests.processes import Started, free_port, started
from tests.support import eventually
from tests.svc_order.conftest import (
    Dependencies,
    Shop,
    buyer,
    closed_address,
    order_settings,
)

# Blocks the INSERT of an order (a ROW EXCLUSIVE lock) and nothing a checkout does before it.
ORDERS_LOCKED = "LOCK TABLE orders IN SHARE MODE"
WAITING_FOR_ORDERS = """
SELECT count(*) FROM pg_locks
WHERE relation = 'orders'::regclass AND NOT granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
INTENTS_OF_USER = "SELECT order_id, state FROM checkout_intents WHERE user_id = $1"


@dataclass
class Stalled:
    """A checkout waiting to create its order: `order_id` is its intent's, `answer` its request."""

    order_id: uuid.UUID
    answer: asyncio.Task[httpx.Response]


@contextlib.asynccontextmanager
async def stalled(
    who: dict[str, str], checkout: Coroutine[Any, Any, httpx.Response], database: str | None = None
) -> AsyncIterator[Stalled]:
    """Run `checkout` (of `who`'s cart, by a svc_order on `database`, the test one by default) until it
    waits to create its order; leaving the block lets it finish."""
    lock = await asyncpg.connect(database or os.environ["ORDER_DATABASE_URL"])
    try:
        held = lock.transaction()
        await held.start()
        await lock.execute(ORDERS_LOCKED)
        answer = asyncio.create_task(checkout)

        async def waiting() -> bool:
            assert not answer.done(), answer.result().text
            return bool(await lock.fetchval(WAITING_FOR_ORDERS))

        await eventually(waiting)
        ((order_id, state),) = await lock.fetch(INTENTS_OF_USER, uuid.UUID(who["X-User-Id"]))
        assert state == "open"
        yield Stalled(order_id, answer)
        await held.rollback()
    finally:
        await lock.close()


@pytest.fixture(scope="module")
async def clients(dependencies: Dependencies) -> AsyncIterator[Downstream]:
    """svc_order's clients of inventory and discounts, for playing the recovery job by hand."""
    config = order_settings(dependencies)
    downstream = Downstream(OrderConfig.of(config), config.redis_url)
    yield downstream
    await downstream.close()


async def recover(shop: Shop, clients: Downstream, older_than: float = 0.0) -> list[uuid.UUID]:
    async with shop.db.acquire() as conn:
        return await intents.recover(conn, clients, older_than)


async def test_recovery_gives_back_an_abandoned_checkouts_stock_and_coupon_once_even_run_twice_at_once(
    shop: Shop, clients: Downstream
) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    coupon = await shop.coupon()
    await shop.fill(who, (product, 2))
    async with stalled(who, shop.checkout(who, discountCode=coupon["code"])) as checkout:
        assert await shop.stock(product) == {"onHand": 5, "reserved": 2, "available": 3}
        assert await shop.usages(coupon["id"]) == ["RESERVED"]

        runs = await asyncio.gather(recover(shop, clients), recover(shop, clients))

        assert [checkout.order_id in run for run in runs].count(True) == 1
        await shop.stock_becomes(product, reserved=0, available=5)
        await shop.usages_become(coupon["id"], "RELEASED")
    # Its order is refused now (a 503: nothing happened), and it compensates nothing a second time.
    refused = await checkout.answer
    assert refused.status_code == 503 and refused.json()["error"] == "ServiceUnavailable", refused.text
    assert (await shop.order.get(f"/api/orders/{checkout.order_id}", headers=who)).status_code == 404
    assert len(await shop.outbox("checkout.aborted", str(checkout.order_id))) == 1
    assert await shop.outbox("order.cancelled", str(checkout.order_id)) == []  # there never was an order
    assert await shop.stock(product) == {"onHand": 5, "reserved": 0, "available": 5}
    assert len((await shop.order.get("/api/cart", headers=who)).json()["items"]) == 1


async def test_with_inventory_unreachable_the_recovery_leaves_the_release_to_checkout_aborted(
    shop: Shop,
) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 4))
    unreachable = order_settings(
        shop.deps, ORDER_INVENTORY_GRPC_URL=closed_address(), ORDER_DEADLINE_SECONDS="0.5"
    )
    blind = Downstream(OrderConfig.of(unreachable), unreachable.redis_url)
    try:
        async with stalled(who, shop.checkout(who)) as checkout:
            assert checkout.order_id in await recover(shop, blind)
            # svc_inventory releases it when it reads the event, as it would once back.
            (aborted,) = await shop.outbox("checkout.aborted", str(checkout.order_id))
            assert aborted["reason"] == "checkout abandoned" and aborted["items"][0]["quantity"] == 4
            await shop.stock_becomes(product, reserved=0, available=5)
    finally:
        await blind.close()
    assert (await checkout.answer).status_code == 503


async def test_retrying_a_compensated_checkout_with_its_key_places_one_whole_order(
    shop: Shop, clients: Downstream
) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 3))
    key = str(uuid.uuid4())
    async with stalled(who, shop.checkout(who, key=key)) as checkout:
        assert checkout.order_id in await recover(shop, clients)
    assert (await checkout.answer).status_code == 503

    retried = await shop.checkout(who, key=key)

    assert retried.status_code == 201, retried.text
    placed = retried.json()
    assert placed["orderId"] != str(checkout.order_id) and "idempotent-replayed" not in retried.headers
    assert [i["quantity"] for i in (await shop.order_of(who, placed["orderId"]))["items"]] == [3]
    assert await shop.stock(product) == {"onHand": 5, "reserved": 3, "available": 2}
    assert (await shop.checkout(who, key=key)).json() == placed  # and from now on, that one replays


async def test_a_slow_checkout_within_the_grace_is_left_alone_and_creates_its_order(
    shop: Shop, clients: Downstream
) -> None:
    who = buyer()
    product = await shop.new_product(stock=5)
    await shop.fill(who, (product, 2))
    overdue = OrderConfig.of(order_settings(shop.deps)).intent_overdue
    async with stalled(who, shop.checkout(who)) as checkout:
        assert checkout.order_id not in await recover(shop, clients, overdue)

    placed = await checkout.answer

    assert placed.status_code == 201 and placed.json()["orderId"] == str(checkout.order_id)
    assert await shop.stock(product) == {"onHand": 5, "reserved": 2, "available": 3}
    assert await shop.db.fetch(INTENTS_OF_USER, uuid.UUID(who["X-User-Id"])) == []  # the order is its record


async def test_a_refused_checkout_closes_its_own_intent(shop: Shop) -> None:
    who = buyer()
    scarce = await shop.new_product(stock=1)
    await shop.fill(who, (scarce, 2))

    assert (await shop.checkout(who)).status_code == 422

    ((order_id, state),) = await shop.db.fetch(INTENTS_OF_USER, uuid.UUID(who["X-User-Id"]))
    assert state == "compensated"
    assert (await shop.order.get(f"/api/orders/{order_id}", headers=who)).status_code == 404


async def test_compensated_intents_are_pruned_after_a_day_and_open_ones_kept(shop: Shop) -> None:
    user = uuid.uuid4()
    ages = [("compensated", 25), ("compensated", 1), ("open", 25)]
    rows = [(uuid.uuid4(), state, timedelta(hours=hours)) for state, hours in ages]
    for order_id, state, age in rows:
        await shop.db.execute(
            "INSERT INTO checkout_intents (order_id, user_id, lines, state, created_at, compensated_at)"
            " VALUES ($1, $2, '[]', $3, now() - $4::interval, CASE WHEN $3 = 'compensated' THEN now() END)",
            order_id,
            user,
            state,
            age,
        )

    async with shop.db.acquire() as conn:
        await intents.prune(conn)

    left = {row["order_id"] for row in await shop.db.fetch(INTENTS_OF_USER, user)}
    assert left == {rows[1][0], rows[2][0]}
    await shop.db.execute("DELETE FROM checkout_intents WHERE user_id = $1", user)  # not for the recovery


# -- a real svc_order, SIGKILLed mid-checkout and started again -----------------------------------------


@contextlib.asynccontextmanager
async def order_process(env: dict[str, str], port: int, log: Path) -> AsyncIterator[Started]:
    """`python -m svc_order`, once it is ready."""
    with started("-m", "svc_order", env=env, log=log) as process:
        await process.ready(f"http://127.0.0.1:{port}/health/ready")
        yield process


async def test_a_checkout_killed_mid_way_gives_its_stock_back_within_30_s_of_the_restart(
    shop: Shop, tmp_path: Path
) -> None:
    # A database of its own: only the killed process and its successor recover its intents, with the
    # shipped defaults (grace, period).
    database = f"{os.environ['ORDER_DATABASE_URL']}_crash"
    await db.drop_database(database)
    port = free_port()
    env = {
        "ORDER_PORT": str(port),
        "ORDER_DATABASE_URL": database,
        "ORDER_PRODUCT_URL": shop.deps.product_url,
        "ORDER_INVENTORY_GRPC_URL": shop.deps.inventory_grpc,
        "ORDER_DISCOUNT_GRPC_URL": shop.deps.discount_grpc,
    }
    who = buyer()
    product = await shop.new_product(stock=4)
    coupon = await shop.coupon()
    log = tmp_path / "order.log"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as order:
        async with order_process(env, port, log) as first:
            await shop.fill(who, (product, 3), client=order)
            checkout = shop.checkout(who, client=order, discountCode=coupon["code"])
            async with stalled(who, checkout, database) as doomed:
                assert await shop.stock(product) == {"onHand": 4, "reserved": 3, "available": 1}
                first.kill()
                killed_at = time.monotonic()
            # Its transaction dies with its connection: no order, however the lock is let go.
            with pytest.raises(httpx.TransportError):
                await doomed.answer
        assert await shop.stock(product) == {"onHand": 4, "reserved": 3, "available": 1}

        async with order_process(env, port, log):
            await shop.stock_becomes(product, reserved=0, available=4, within=30)
            recovered_in = time.monotonic() - killed_at
            print(f"\nstock of a killed checkout available again {recovered_in:.1f} s after the SIGKILL")
            assert recovered_in < 30
            await shop.usages_become(coupon["id"], "RELEASED")
            # The cart is as it was and no order came of the killed checkout: the buyer checks out again.
            assert (await shop.checkout(who, client=order)).status_code == 201
            assert (await order.get("/api/orders", headers=who)).json()["totalCount"] == 1
    await shop.stock_becomes(product, reserved=3, available=1)
    await db.drop_database(database)
