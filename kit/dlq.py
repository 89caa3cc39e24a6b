"""Parked messages: list, show, re-drive and purge the `<service>.<routing key>.dlq` queues (kit.bus).

    python -m kit.dlq list                      every DLQ there is, with its message count
    python -m kit.dlq show <queue> [--limit N]  the parked messages: id, attempts, why they failed, body
    python -m kit.dlq redrive <queue> [--limit N]
    python -m kit.dlq purge <queue>

`<queue>` is a DLQ's name (`notify.order.confirmed.dlq`) or its consumer queue's (`notify.order.confirmed`).
Re-driving moves each message back to its consumer queue with a fresh set of retries, publisher-confirmed
before the parked copy is acked: a crash in between leaves it in both places, and the consumer's inbox
drops the second. Only the messages parked when it starts are moved, so a message that fails again
lands back in the DLQ instead of going round in a loop. The same functions serve svc_notify's Admin
routes (`/api/admin/dlq`), each request on a connection of its own, so a failed look never touches the
service's consumers.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime

import aiormq
import msgspec
from pamqp import commands as spec

from kit import settings
from shop.map import EXCHANGES, services_with_a_database

SUFFIX = ".dlq"
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9.-]+$")


class UnknownQueue(LookupError):
    """No such DLQ (or the name is not one)."""


class Parked(msgspec.Struct, rename="camel", kw_only=True):
    message_id: str | None
    attempts: int | None
    error: str | None  # the last failure, as the consumer logged it
    parked_at: datetime | None
    body: object  # the event as JSON, or its text when it is not JSON


class DeadLetters(msgspec.Struct, rename="camel", kw_only=True):
    queue: str
    messages: int


def dlq_name(queue: str) -> str:
    """The DLQ of `queue` (a DLQ's or a consumer queue's name); UnknownQueue when it is no queue name."""
    name = queue if queue.endswith(SUFFIX) else queue + SUFFIX
    if not _NAME.match(name):
        raise UnknownQueue(queue)
    return name


def _candidates() -> list[str]:
    """Every DLQ a service of the contract could have: one per service and routing key."""
    return [f"{spec.name}.{key}{SUFFIX}" for spec in services_with_a_database() for key in EXCHANGES]


async def _count(connection: aiormq.abc.AbstractConnection, queue: str) -> int | None:
    """Messages in `queue`, None when it does not exist (a passive declare of a missing queue closes its
    channel, hence a channel per look)."""
    channel = await connection.channel()
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    await channel.close()
    return declared.message_count or 0


async def queues(connection: aiormq.abc.AbstractConnection) -> list[DeadLetters]:
    """Every DLQ that exists, with how many messages it holds, fullest first.

    One look after the other: channels opened concurrently while others close on a failed passive
    declare can make aiormq reuse a channel number, which costs the whole connection.
    """
    found = []
    for name in _candidates():
        count = await _count(connection, name)
        if count is not None:
            found.append(DeadLetters(queue=name, messages=count))
    return sorted(found, key=lambda q: (-q.messages, q.queue))


async def _existing(connection: aiormq.abc.AbstractConnection, queue: str) -> tuple[str, int]:
    name = dlq_name(queue)
    count = await _count(connection, name)
    if count is None:
        raise UnknownQueue(queue)
    return name, count


def _parked(message: aiormq.abc.DeliveredMessage) -> Parked:
    properties = message.header.properties
    headers = properties.headers or {}
    attempts, error = headers.get("x-attempt"), headers.get("x-error")
    try:
        body: object = msgspec.json.decode(message.body)
    except msgspec.DecodeError:
        body = message.body.decode(errors="replace")
    return Parked(
        message_id=properties.message_id,
        attempts=attempts if isinstance(attempts, int) else None,
        error=error if isinstance(error, str) else None,
        parked_at=properties.timestamp,
        body=body,
    )


async def show(connection: aiormq.abc.AbstractConnection, queue: str, limit: int = 50) -> list[Parked]:
    """Up to `limit` parked messages, oldest first, left where they are."""
    name, count = await _existing(connection, queue)
    channel = await connection.channel()
    found: list[Parked] = []
    try:
        for _ in range(min(limit, count)):
            message = await channel.basic_get(name, no_ack=False)
            if message.delivery_tag is None:
                break  # emptied meanwhile
            found.append(_parked(message))
    finally:
        await channel.close()  # every message taken but not acked goes back to the queue
    return found


async def redrive(connection: aiormq.abc.AbstractConnection, queue: str, limit: int | None = None) -> int:
    """Move the parked messages (at most `limit`) back to their consumer queue; returns how many."""
    name, count = await _existing(connection, queue)
    target = name.removesuffix(SUFFIX)
    channel = await connection.channel(publisher_confirms=True)
    moved = 0
    try:
        for _ in range(count if limit is None else min(limit, count)):
            message = await channel.basic_get(name, no_ack=False)
            if message.delivery_tag is None:
                break
            properties = message.header.properties
            headers = dict(properties.headers or {})
            redriven = headers.get("x-redriven", 0)
            headers.update({"x-attempt": 0, "x-redriven": (redriven if isinstance(redriven, int) else 0) + 1})
            confirm = await channel.basic_publish(
                message.body,
                exchange="",
                routing_key=target,
                properties=spec.Basic.Properties(
                    content_type=properties.content_type,
                    delivery_mode=2,
                    message_id=properties.message_id,
                    timestamp=properties.timestamp,
                    headers=headers,
                ),
            )
            if not isinstance(confirm, spec.Basic.Ack):
                raise RuntimeError(f"the broker did not confirm a message re-driven to {target}")
            await channel.basic_ack(message.delivery_tag)
            moved += 1
    finally:
        await channel.close()
    return moved


async def purge(connection: aiormq.abc.AbstractConnection, queue: str) -> int:
    """Drop every parked message of `queue`; returns how many."""
    name, _ = await _existing(connection, queue)
    channel = await connection.channel()
    try:
        result = await channel.queue_purge(name)
    finally:
        await channel.close()
    return int(result.message_count or 0)


async def _main(args: argparse.Namespace) -> int:
    connection = await aiormq.connect(settings.load("edge").amqp_url)
    encoder = msgspec.json.Encoder()
    try:
        if args.command == "list":
            for dead in await queues(connection):
                print(f"{dead.messages:8d}  {dead.queue}")
        elif args.command == "show":
            for parked in await show(connection, args.queue, args.limit):
                print(encoder.encode(parked).decode())
        elif args.command == "redrive":
            print(f"re-driven: {await redrive(connection, args.queue, args.limit)}")
        else:
            print(f"purged: {await purge(connection, args.queue)}")
    except UnknownQueue as exc:
        print(f"no such DLQ: {exc}", file=sys.stderr)
        return 2
    finally:
        await connection.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.dlq", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every DLQ with its message count")
    for name, default in (("show", 50), ("redrive", None)):
        command = commands.add_parser(name)
        command.add_argument("queue")
        command.add_argument("--limit", type=int, default=default)
    commands.add_parser("purge").add_argument("queue")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
