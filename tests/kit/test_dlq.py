"""Parked messages: listed with why they failed, re-driven once with fresh retries, purged; the CLI."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import aiormq
import msgspec
import pytest
from pamqp import commands as spec

from kit import dlq
from kit.bus import Broker, Queues

# A consumer queue no service of the suite has, so no consumer takes the re-driven messages.
QUEUE = "auth.product.deleted"


@pytest.fixture
async def connection() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    await Broker.declare_exchanges(connection)
    channel = await connection.channel()
    await Queues("auth", "product.deleted").declare(channel)
    await channel.queue_purge(QUEUE)
    await channel.queue_purge(f"{QUEUE}.dlq")
    yield connection
    await connection.close()


async def _park(connection: aiormq.abc.AbstractConnection, body: bytes, error: str) -> str:
    """A message as kit.bus parks one: its id, its attempts and its last error in the headers."""
    message_id = str(uuid.uuid4())
    channel = await connection.channel(publisher_confirms=True)
    await channel.basic_publish(
        body,
        exchange="",
        routing_key=f"{QUEUE}.dlq",
        properties=spec.Basic.Properties(
            delivery_mode=2, message_id=message_id, headers={"x-attempt": 4, "x-error": error}
        ),
    )
    await channel.close()
    return message_id


async def test_parked_messages_are_listed_with_why_and_left_in_place(
    connection: aiormq.abc.AbstractConnection,
) -> None:
    first = await _park(connection, b'{"productId": "x"}', "KeyError('x')")
    second = await _park(connection, b"not json", "PoisonMessage('...')")

    assert dlq.DeadLetters(queue=f"{QUEUE}.dlq", messages=2) in await dlq.queues(connection)
    shown = await dlq.show(connection, QUEUE)
    assert [(p.message_id, p.attempts, p.error, p.body) for p in shown] == [
        (first, 4, "KeyError('x')", {"productId": "x"}),
        (second, 4, "PoisonMessage('...')", "not json"),
    ]
    assert len(await dlq.show(connection, f"{QUEUE}.dlq", limit=1)) == 1
    assert len(await dlq.show(connection, QUEUE)) == 2  # looking took nothing away


async def test_redrive_moves_each_parked_message_once_with_fresh_retries(
    connection: aiormq.abc.AbstractConnection,
) -> None:
    ids = [await _park(connection, msgspec.json.encode({"n": n}), "boom") for n in range(3)]
    assert await dlq.redrive(connection, QUEUE, limit=2) == 2
    assert await dlq.redrive(connection, QUEUE) == 1
    assert await dlq.show(connection, QUEUE) == []

    channel = await connection.channel()
    moved = []
    while (message := await channel.basic_get(QUEUE, no_ack=True)).delivery_tag is not None:
        headers = message.header.properties.headers or {}
        moved.append((message.header.properties.message_id, headers["x-attempt"], headers["x-redriven"]))
    assert moved == [(i, 0, 1) for i in ids]


async def test_purge_drops_them_and_unknown_queues_are_refused(
    connection: aiormq.abc.AbstractConnection,
) -> None:
    await _park(connection, b"{}", "boom")
    assert await dlq.purge(connection, QUEUE) == 1
    assert await dlq.show(connection, QUEUE) == []
    for name in ("auth.no-such-key", "not a queue", "../etc"):
        with pytest.raises(dlq.UnknownQueue):
            await dlq.show(connection, name)


async def test_the_command_line_lists_shows_redrives_and_purges(
    connection: aiormq.abc.AbstractConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    message_id = await _park(connection, b'{"a": 1}', "boom")

    # The CLI runs its own event loop (asyncio.run), hence a thread of its own.
    async def cli(*argv: str) -> int:
        return await asyncio.to_thread(dlq.main, list(argv))

    assert await cli("list") == 0
    assert f"       1  {QUEUE}.dlq" in capsys.readouterr().out
    assert await cli("show", QUEUE) == 0
    assert msgspec.json.decode(capsys.readouterr().out)["messageId"] == message_id
    assert await cli("redrive", QUEUE) == 0
    assert capsys.readouterr().out == "re-driven: 1\n"
    assert await cli("purge", QUEUE) == 0
    assert capsys.readouterr().out == "purged: 0\n"
    assert await cli("show", "auth.nothing-here") == 2
