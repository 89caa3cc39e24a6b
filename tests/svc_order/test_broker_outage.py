"""RabbitMQ down: checkouts go on, their events wait in the outbox and go out once it is back."""

from __future__ import annotations

import os

import aiormq
import asyncpg
import msgspec

from kit import db
from tests.support import eventually
from tests.svc_order.conftest import Shop, buyer, closed_address, order_app


async def test_checkouts_succeed_without_rabbitmq_and_their_events_go_out_when_it_returns(shop: Shop) -> None:
    # A database of its own: the main svc_order's relay (same database) would otherwise send them at once.
    database = f"{os.environ['ORDER_DATABASE_URL']}_outage"
    await db.drop_database(database)
    broker_down = {"ORDER_DATABASE_URL": database, "AMQP_URL": f"amqp://guest:guest@{closed_address()}/"}
    product = await shop.new_product(stock=10)
    buyers = [buyer() for _ in range(3)]
    async with order_app(shop.deps, **broker_down) as down:
        for who in buyers:
            await shop.fill(who, (product, 1), client=down)
        answers = [await shop.checkout(who, client=down) for who in buyers]
        assert [a.status_code for a in answers] == [201] * 3
        assert (await down.get("/health/ready")).status_code == 503
    placed = {a.json()["orderId"] for a in answers}
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 3

        connection = await aiormq.connect(os.environ["AMQP_URL"])
        channel = await connection.channel()
        queue = (await channel.queue_declare(exclusive=True)).queue
        await channel.queue_bind(queue, "order.exchange", routing_key="order.created")
        seen: set[str] = set()

        async def all_published() -> bool:
            while (message := await channel.basic_get(queue, no_ack=True)).body:
                seen.add(msgspec.json.decode(message.body)["orderId"])
            return placed <= seen

        async def all_marked_sent() -> bool:
            # The relay marks rows sent in the transaction that published them: a moment after delivery.
            return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0

        async with order_app(shop.deps, ORDER_DATABASE_URL=database):
            await eventually(all_published)
            await eventually(all_marked_sent)  # before the app (and its relay) stops
        await connection.close()
    finally:
        await conn.close()
    await shop.stock_becomes(product, reserved=3)
