"""A gateway's payment notification replayed many times at once changes the state once."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

from tests.faults.shop import Shop, buyer
from tests.support import eventually

REPLAYS = 20


async def test_concurrent_replays_of_one_ipn_confirm_the_order_once(shop: Shop) -> None:
    product = await shop.product(units=5)
    who = buyer(shop.env)
    await shop.fill(who, product, quantity=2)
    order = (await shop.checkout(who)).json()
    await eventually(lambda: shop.payment_exists(order["orderId"]), within=20)
    # The buyer pays, but the gateway's notification is lost on the way; then it arrives many times.
    paid = await shop.pay(order, notify=False)
    query = urlsplit(paid["returnUrl"]).query
    answers = await asyncio.gather(
        *(shop.edge.get(f"/api/payments/vnpay/ipn?{query}") for _ in range(REPLAYS))
    )
    codes = [(answer.status_code, answer.json()["RspCode"]) for answer in answers]

    async def confirmed() -> bool:
        return (await shop.statuses_of([order["orderId"]]))["CONFIRMED"] == 1

    await eventually(confirmed, within=20, interval=0.1)

    async def committed() -> bool:
        return await shop.stock(product) == {"onHand": 3, "reserved": 0, "available": 3}

    await eventually(committed, within=20, interval=0.1)
    events = await shop.rows(
        "payment",
        "SELECT routing_key FROM outbox WHERE routing_key LIKE 'payment.%'"
        " AND convert_from(payload, 'UTF8')::jsonb ->> 'orderId' = $1",
        order["orderId"],
    )
    commits = await shop.rows(
        "inventory",
        "SELECT 1 FROM stock_log WHERE kind = 'COMMIT' AND order_id = $1",
        uuid.UUID(order["orderId"]),
    )
    print(f"\n{REPLAYS} concurrent replays of one IPN: answers {sorted(set(codes))},"
          f" {len(events)} payment event, {len(commits)} stock commit")  # fmt: skip
    assert all(status == 200 for status, _ in codes)
    assert [row["routing_key"] for row in events] == ["payment.success"]
    assert len(commits) == 1
