"""RabbitMQ stopped for 20 s while buyers check out and pay: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.faults.conftest import Servers
from tests.faults.shop import Shop, buyer
from tests.support import eventually

OUTAGE_SECONDS = 20.0


async def test_a_broker_outage_during_checkouts_and_payments_loses_and_doubles_nothing(
    shop: Shop, servers: Servers
) -> None:
    units = 1_000
    product = await shop.product(units=units)
    early, during = [buyer(shop.env) for _ in range(10)], [buyer(shop.env) for _ in range(20)]
    await asyncio.gather(*(shop.fill(who, product) for who in early + during))
    # Orders placed before the outage, whose payments exist: they are paid while the broker is down.
    first = [(await shop.checkout(who)).json() for who in early]
    await eventually(lambda: _all_payments(shop, first), within=20)

    await servers.rabbitmq.stop()
    stopped = time.monotonic()
    placed = await asyncio.gather(*(shop.checkout(who) for who in during))
    assert [answer.status_code for answer in placed] == [201] * len(during)
    await asyncio.gather(*(shop.pay(order) for order in first))
    # The fault itself lasts this long, whatever the shop does meanwhile.
    await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - stopped))
    await servers.rabbitmq.start()
    back = time.monotonic()

    # Orders placed in the outage get their payments once order.created is delivered; then are paid.
    second = [answer.json() for answer in placed]
    await eventually(lambda: _all_payments(shop, second), within=60)
    await asyncio.gather(*(shop.pay(order) for order in second))
    orders = [order["orderId"] for order in first + second]

    async def all_confirmed() -> bool:
        return (await shop.statuses_of(orders))["CONFIRMED"] == len(orders)

    await eventually(all_confirmed, within=60, interval=0.1)
    confirmed_after = time.monotonic() - back

    async def committed() -> bool:
        return await shop.stock(product) == {"onHand": units - 30, "reserved": 0, "available": units - 30}

    await eventually(committed, within=30, interval=0.1)
    ids = [uuid.UUID(order) for order in orders]
    payments = await shop.rows(
        "payment", "SELECT order_id, status FROM payments WHERE order_id = ANY($1::uuid[])", ids
    )
    commits = await shop.rows(
        "inventory",
        "SELECT order_id FROM stock_log WHERE kind = 'COMMIT' AND product_id = $1",
        uuid.UUID(product),
    )
    print(
        f"\nbroker down {OUTAGE_SECONDS:.0f} s during 20 checkouts and 10 payments: {len(orders)}/30 orders"
        f" confirmed {confirmed_after:.1f} s after it returned;"
        f" {len(payments)} payments, {len(commits)} stock commits"
    )
    assert sorted(row["order_id"] for row in payments) == sorted(ids)  # one payment each, none lost
    assert {row["status"] for row in payments} == {"SUCCEEDED"}
    assert sorted(row["order_id"] for row in commits) == sorted(ids)  # stock taken once per order


async def _all_payments(shop: Shop, orders: list[dict[str, str]]) -> bool:
    found = await asyncio.gather(*(shop.payment_exists(order["orderId"]) for order in orders))
    return all(found)
