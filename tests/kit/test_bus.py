from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable

import aiormq
import asyncpg
import msgspec
import pytest
from pamqp import commands as spec
from prometheus_client import REGISTRY

from kit import db
from kit.bus import AfterCommit, Broker, Consumer, Event, Handler, publish
from kit.relay import OutboxRelay
from tests.conftest import PORT_OFFSET
from tests.kit.conftest import KIT_DB
from tests.servers import own_postgres
from tests.support import drained, eventually, has_consumer

AMQP_URL = os.environ["AMQP_URL"]
FAST_RETRIES = (0.1, 0.2, 0.4)


class Verified(Event):
    routing_key = "user.verified"
    user_id: uuid.UUID
    email: str


@contextlib.asynccontextmanager
async def running(*coroutines: Awaitable[None]) -> AsyncIterator[None]:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    broker = Broker(AMQP_URL)
    async with running(broker.run()):
        await asyncio.wait_for(broker.connection(), 5)
        yield broker
    await broker.close()


async def bound_queue(channel: aiormq.abc.AbstractChannel, routing_key: str = "user.verified") -> str:
    queue = f"test.{uuid.uuid4().hex}"
    await channel.queue_declare(queue, auto_delete=True)
    await channel.queue_bind(queue, "auth.exchange", routing_key=routing_key)
    return queue


async def drain(channel: aiormq.abc.AbstractChannel, queue: str) -> list[dict[str, object]]:
    bodies = []
    while isinstance(message := await channel.basic_get(queue, no_ack=True), aiormq.abc.DeliveredMessage):
        if message.delivery_tag is None:
            break
        bodies.append(msgspec.json.decode(message.body))
    return bodies


async def test_an_event_of_a_rolled_back_transaction_is_never_published(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    queue = await bound_queue(amqp)
    kept, dropped = (
        Verified(user_id=uuid.uuid4(), email="kept@x.io"),
        Verified(user_id=uuid.uuid4(), email="x@x.io"),
    )
    async with pool.acquire() as conn:
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await publish(conn, dropped)
                raise RuntimeError("the state change failed")
        async with conn.transaction():
            await publish(conn, kept)
    async with running(OutboxRelay(pool, broker, KIT_DB).run()):
        received = await eventually(lambda: drain(amqp, queue))
    assert [m["eventId"] for m in received] == [str(kept.event_id)]
    assert received[0]["email"] == "kept@x.io" and received[0]["userId"] == str(kept.user_id)
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1", kept.event_id
        )
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", dropped.event_id) == 0


async def test_a_burst_of_events_goes_out_in_batches_each_once_in_order_with_its_properties(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    queue = await bound_queue(amqp)
    # More than two of the relay's batches (200): each batch is one write with many confirmations.
    events = [Verified(user_id=uuid.uuid4(), email=f"{i}@x.io") for i in range(450)]
    async with pool.acquire() as conn, conn.transaction():
        await publish(conn, *events)
    received: list[aiormq.abc.DeliveredMessage] = []

    async def all_arrived() -> bool:
        while isinstance(message := await amqp.basic_get(queue, no_ack=True), aiormq.abc.DeliveredMessage):
            if message.delivery_tag is None:
                break
            received.append(message)
        return len(received) >= len(events)

    async with running(OutboxRelay(pool, broker, KIT_DB).run()):
        await eventually(all_arrived)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"))
    assert [m.header.properties.message_id for m in received] == [str(e.event_id) for e in events]
    assert [msgspec.json.decode(m.body)["email"] for m in received] == [e.email for e in events]
    first = received[0].header.properties
    assert (first.content_type, first.delivery_mode, (first.headers or {})["x-attempt"]) == (
        "application/json",
        2,
        0,
    )


async def test_events_written_while_the_broker_is_down_go_out_when_it_returns(
    pool: asyncpg.Pool, amqp: aiormq.abc.AbstractChannel
) -> None:
    queue = await bound_queue(amqp)
    event = Verified(user_id=uuid.uuid4(), email="late@x.io")
    async with pool.acquire() as conn, conn.transaction():
        await publish(conn, event)
    unreachable = Broker("amqp://guest:guest@127.0.0.1:1/")
    relay = OutboxRelay(pool, unreachable, KIT_DB)
    async with running(unreachable.run(), relay.run()):
        # The relay is up (it listens for new rows) and waits for a broker it cannot reach.
        await eventually(lambda: asyncio.sleep(0, relay.listening))
        assert not unreachable.connected
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT sent_at FROM outbox WHERE event_id = $1", event.event_id) is None
    assert await drain(amqp, queue) == []
    back = Broker(AMQP_URL)
    async with running(back.run(), OutboxRelay(pool, back, KIT_DB).run()):
        received = await eventually(lambda: drain(amqp, queue))
    await back.close()
    assert [m["eventId"] for m in received] == [str(event.event_id)]


async def _emit(channel: aiormq.abc.AbstractChannel, body: bytes, message_id: str) -> None:
    await channel.basic_publish(
        body,
        exchange="auth.exchange",
        routing_key="user.verified",
        properties=spec.Basic.Properties(delivery_mode=2, message_id=message_id),
    )


async def _bound(channel: aiormq.abc.AbstractChannel, service: str) -> None:
    """Wait until the test consumer of `service` takes from its queue (bound: an event is not lost)."""
    await eventually(lambda: has_consumer(channel.connection, f"{service}.user.verified"))


def _consumer(pool: asyncpg.Pool, broker: Broker, handler: Handler) -> tuple[Consumer, str]:
    service = f"test{uuid.uuid4().hex[:8]}"
    return Consumer(service, pool, broker, {"user.verified": handler}, retry_delays=FAST_RETRIES), service


async def test_a_duplicate_delivery_has_no_second_effect(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    seen: list[uuid.UUID] = []

    async def on_verified(conn: asyncpg.Connection, event: Verified) -> None:
        seen.append(event.user_id)

    consumer, service = _consumer(pool, broker, on_verified)
    event = Verified(user_id=uuid.uuid4(), email="twice@x.io")
    body = msgspec.json.encode(event)
    async with running(consumer.run()):
        await _bound(amqp, service)
        await asyncio.gather(*(_emit(amqp, body, str(event.event_id)) for _ in range(3)))
        await eventually(lambda: asyncio.sleep(0, seen))
        await eventually(lambda: drained(f"{service}.user.verified"))
    assert seen == [event.user_id]


async def _record_effect(conn: asyncpg.Connection, event: Verified) -> None:
    """A handler's change of state, to count how often it was kept."""
    await conn.execute("CREATE TABLE IF NOT EXISTS effects (event_id uuid)")
    await conn.execute("INSERT INTO effects VALUES ($1)", event.event_id)


async def test_a_failing_handler_is_retried_and_its_effects_kept_once(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    attempts = 0

    async def flaky(conn: asyncpg.Connection, event: Verified) -> None:
        nonlocal attempts
        attempts += 1
        await _record_effect(conn, event)
        if attempts < 3:
            raise ConnectionError("downstream hiccup")

    consumer, service = _consumer(pool, broker, flaky)
    event = Verified(user_id=uuid.uuid4(), email="flaky@x.io")
    async with running(consumer.run()):
        await _bound(amqp, service)
        await _emit(amqp, msgspec.json.encode(event), str(event.event_id))
        await eventually(lambda: asyncio.sleep(0, attempts >= 3))
        await eventually(lambda: drained(f"{service}.user.verified"))
    assert attempts == 3
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM effects WHERE event_id = $1", event.event_id) == 1


async def test_after_commit_work_sees_the_committed_change_and_its_failure_is_not_retried(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    seen_committed: list[bool] = []
    attempts = 0

    async def with_after(conn: asyncpg.Connection, event: Verified) -> AfterCommit:
        nonlocal attempts
        attempts += 1
        await _record_effect(conn, event)

        async def after() -> None:
            # Another connection: it sees the row only once the handler's transaction committed.
            async with pool.acquire() as other:
                count = await other.fetchval(
                    "SELECT count(*) FROM effects WHERE event_id = $1", event.event_id
                )
            seen_committed.append(count == 1)
            raise RuntimeError("a cache that cannot be reached")

        return after

    consumer, service = _consumer(pool, broker, with_after)
    event = Verified(user_id=uuid.uuid4(), email="after@x.io")
    async with running(consumer.run()):
        await _bound(amqp, service)
        await _emit(amqp, msgspec.json.encode(event), str(event.event_id))
        await eventually(lambda: asyncio.sleep(0, seen_committed))
        # Nothing waits or is retried: the failure after the commit was not sent round again.
        await eventually(lambda: drained(f"{service}.user.verified"))
    assert (attempts, seen_committed) == (1, [True])
    assert await drain(amqp, f"{service}.user.verified.dlq") == []


async def test_a_handler_that_keeps_failing_ends_in_the_dead_letter_queue(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    attempts = 0

    async def broken(conn: asyncpg.Connection, event: Verified) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("always")

    consumer, service = _consumer(pool, broker, broken)
    event = Verified(user_id=uuid.uuid4(), email="dead@x.io")
    async with running(consumer.run()):
        await _bound(amqp, service)
        await _emit(amqp, msgspec.json.encode(event), str(event.event_id))
        parked = await eventually(lambda: drain(amqp, f"{service}.user.verified.dlq"), within=5)
    assert attempts == 1 + len(FAST_RETRIES)
    assert [m["eventId"] for m in parked] == [str(event.event_id)]


async def test_a_message_that_is_not_an_event_is_parked_without_retries(
    pool: asyncpg.Pool, broker: Broker, amqp: aiormq.abc.AbstractChannel
) -> None:
    async def never(conn: asyncpg.Connection, event: Verified) -> None:
        raise AssertionError("a malformed message must not reach the handler")

    consumer, service = _consumer(pool, broker, never)
    async with running(consumer.run()):
        await _bound(amqp, service)
        await _emit(amqp, b"{not json", "m1")
        assert await eventually(lambda: _message_count(amqp, f"{service}.user.verified.dlq"), within=3) == 1
        for delay in FAST_RETRIES:
            assert await _message_count(amqp, f"{service}.user.verified.retry.{delay:g}s") == 0


async def _message_count(channel: aiormq.abc.AbstractChannel, queue: str) -> int:
    result = await channel.queue_declare(queue, passive=True)
    return result.message_count or 0


async def event_latencies(pool: asyncpg.Pool, arrivals: asyncio.Queue[float], count: int = 10) -> list[float]:
    """Seconds from an event's commit to its delivery (times put in `arrivals`), one event at a time."""
    latencies = []
    for _ in range(count):
        async with pool.acquire() as conn, conn.transaction():
            await publish(conn, Verified(user_id=uuid.uuid4(), email="latency@x.io"))
        committed = time.perf_counter()
        latencies.append(await asyncio.wait_for(arrivals.get(), 5) - committed)
    return latencies


async def test_events_are_relayed_in_milliseconds_again_right_after_a_postgresql_restart(
    broker: Broker, amqp: aiormq.abc.AbstractChannel, caplog: pytest.LogCaptureFixture
) -> None:
    async with own_postgres(5434 + PORT_OFFSET) as server:
        url = f"{server.url}/relay"
        await db.ensure_database(url)
        pool = await db.create_pool(url, 1, 4)
        await db.migrate(pool)
        relay = OutboxRelay(pool, broker, url)
        arrivals: asyncio.Queue[float] = asyncio.Queue()

        async def arrived(message: aiormq.abc.DeliveredMessage) -> None:
            arrivals.put_nowait(time.perf_counter())

        await amqp.basic_consume(await bound_queue(amqp), arrived, no_ack=True)
        try:
            async with running(relay.run()):
                await eventually(lambda: asyncio.sleep(0, relay.listening))
                before = statistics.median(await event_latencies(pool, arrivals))

                await server.restart()
                await eventually(lambda: asyncio.sleep(0, relay.listening))
                assert REGISTRY.get_sample_value("shop_outbox_listening") == 1.0
                after = statistics.median(await event_latencies(pool, arrivals))
        finally:
            await pool.close()
    assert "outbox listener connection lost" in caplog.text  # the operator is told
    print(f"\nmedian commit-to-queue latency: {before * 1000:.1f} ms before, {after * 1000:.1f} ms after")
    # Polling alone would give ~500 ms (a 1 s period); hearing NOTIFY gives a few milliseconds.
    assert after < 0.1
