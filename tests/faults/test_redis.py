"""Redis flushed in the middle of a flash sale: never a unit sold twice, none held without an order."""

from __future__ import annotations

import asyncio
import collections
import uuid

from redis.asyncio import Redis

from tests.faults.conftest import Servers
from tests.faults.shop import Shop, buyer
from tests.support import eventually

UNITS, BUYERS = 50, 500


async def test_a_redis_flush_during_a_flash_sale_oversells_nothing(shop: Shop, servers: Servers) -> None:
    product = await shop.product(units=UNITS)
    buyers = [buyer(shop.env) for _ in range(BUYERS)]
    gate = asyncio.Semaphore(50)

    async def fill(who: dict[str, str]) -> None:
        async with gate:
            await shop.fill(who, product)

    await asyncio.gather(*(fill(who) for who in buyers))
    answered: collections.Counter[int] = collections.Counter()
    flushed = asyncio.Event()
    redis = Redis.from_url(servers.redis_url)

    async def shopper(who: dict[str, str]) -> str | None:
        """Checks out, retrying a 503 as its Retry-After says; the order id when it won a unit."""
        for _ in range(20):
            answer = await shop.checkout(who)
            answered[answer.status_code] += 1
            if sum(answered.values()) >= 100 and not flushed.is_set():
                flushed.set()
                await redis.flushall()
            if answer.status_code != 503:
                return answer.json()["orderId"] if answer.status_code == 201 else None
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
        return None

    won = [order for order in await asyncio.gather(*(shopper(who) for who in buyers)) if order]
    await redis.aclose()
    assert flushed.is_set()

    async def settled() -> dict[str, int] | None:
        level = await shop.stock(product)
        return level if level["reserved"] == len(won) else None

    level = await eventually(settled, within=30, interval=0.2)
    held = await shop.rows(
        "inventory",
        "SELECT r.order_id FROM reservations r JOIN reservation_lines l USING (order_id)"
        " WHERE l.product_id = $1 AND r.state = 'RESERVED'",
        uuid.UUID(product),
    )
    print(f"\nflash sale of {UNITS} units to {BUYERS} buyers, Redis flushed mid-sale: {len(won)} won,"
          f" answers {dict(answered)}, stock after {level}")  # fmt: skip
    assert len(won) <= UNITS
    assert sorted(str(row["order_id"]) for row in held) == sorted(won)
    assert level == {"onHand": UNITS, "reserved": len(won), "available": UNITS - len(won)}
