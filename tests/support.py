"""Helpers shared by the tests: identity headers, waiting for a condition, serving an app in-process,
publishing events, recording spans."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import aiormq
import grpc
import httpx
import msgspec
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pamqp import commands as spec
from starlette.applications import Starlette

from kit import telemetry
from kit.bus import Event
from kit.grpc import GrpcServer, channel

T = TypeVar("T")


def identity(*roles: str, user_id: uuid.UUID | str | None = None, email: str | None = None) -> dict[str, str]:
    """The identity headers the edge sets after verifying a token: a user (new unless `user_id` is given)
    holding `roles` (a single "User" when none)."""
    user_id = user_id or uuid.uuid4()
    return {
        "X-User-Id": str(user_id),
        "X-User-Roles": ",".join(roles or ("User",)),
        "X-User-Email": email or f"{user_id}@shop.test",
    }


@contextlib.contextmanager
def recorded_spans(service: str = "test", *, statements: bool = False) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (kit.telemetry, as `service`) while it lasts, each span kept in memory
    as it ends; `statements` as a service has them (kit.app)."""
    exporter = InMemorySpanExporter()
    telemetry.setup(service, exporter=exporter, statements=statements)
    try:
        yield exporter
    finally:
        telemetry.shutdown()


def patient_redis(url: str) -> str:
    """`url` with Redis timeouts of 5 s instead of kit.cache.connect's 0.5 s, which a loaded machine can
    outlast, for the tests whose subject is not how a slow Redis is given up on. The URL's options win
    over the keyword arguments of redis-py's `from_url`."""
    return f"{url}{'&' if '?' in url else '?'}socket_timeout=5&socket_connect_timeout=5"


async def eventually(check: Callable[[], Awaitable[T]], within: float = 10.0, interval: float = 0.05) -> T:
    """Await `check()` until it returns something truthy; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {result!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app` with its lifespan (database, broker, consumers) and a client that calls it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@contextlib.asynccontextmanager
async def serve_grpc(
    app: Starlette, server: GrpcServer
) -> AsyncIterator[tuple[httpx.AsyncClient, grpc.aio.Channel]]:
    """`serve(app)` and a ready channel to `server`, the gRPC job the app runs (bound to a free port)."""
    async with serve(app) as http:
        port = await server.started()
        async with channel(f"127.0.0.1:{port}") as ch:
            await asyncio.wait_for(ch.channel_ready(), 10)  # a server that never answers fails the test
            yield http, ch


Publish = Callable[[str, str, bytes | Mapping[str, object]], Awaitable[None]]
"""`send(exchange, routing_key, body)`: a mapping is an event's fields (`eventId`, `occurredAt` added)."""


async def has_consumer(connection: aiormq.abc.AbstractConnection, queue: str) -> bool:
    """Whether `queue` exists and a consumer takes from it."""
    # A passive declare of a missing queue closes its channel, hence a channel per look.
    channel = await connection.channel()
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    await channel.close()
    return bool(declared.consumer_count)


async def drained(*queues: str) -> bool:
    """Whether every message sent to `queues` (and their retry queues) was handled: none waits, none is
    delivered but unacknowledged. A consumer acknowledges after its handler committed, so this is the
    evidence that redelivered or repeated events had their (lack of) effect. The broker says so only
    through `rabbitmqctl`: AMQP counts the ready messages alone."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(os.environ["AMQP_URL"]).path[1:]) or "/"
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listing = await asyncio.create_subprocess_exec(
        ctl, "-q", "list_queues", "-p", vhost, "name", "messages", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await listing.communicate()
    counts = dict(line.split("\t") for line in out.decode().splitlines()[1:] if "\t" in line)
    assert set(queues) <= set(counts), f"no such queue: {set(queues) - set(counts)}"
    return all(
        int(count) == 0
        for name, count in counts.items()
        if any(name == queue or name.startswith(f"{queue}.retry.") for queue in queues)
    )


async def repeated(publish: Publish, exchange: str, event: Event) -> None:
    """Publish `event` twice as is (a redelivery) and once under another event id (a resend): what a
    consumer must act on once."""
    for copy in (event, event, msgspec.structs.replace(event, event_id=uuid.uuid4())):
        await publish(exchange, event.routing_key, msgspec.json.encode(copy))


@contextlib.asynccontextmanager
async def publisher(queue: str) -> AsyncIterator[Publish]:
    """Publish events as a service's outbox relay does (persistent, confirmed), once `queue` is consumed.

    Until the consumer under test has bound its queue, a published event would be dropped as unroutable;
    `mandatory` makes such a loss fail the test instead of passing silently.
    """
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    try:
        await eventually(lambda: has_consumer(connection, queue))
        channel = await connection.channel(publisher_confirms=True)

        async def send(exchange: str, routing_key: str, body: bytes | Mapping[str, object]) -> None:
            if not isinstance(body, bytes):
                envelope = {"eventId": str(uuid.uuid4()), "occurredAt": datetime.now(UTC).isoformat()}
                body = msgspec.json.encode({**envelope, **body})
            confirm = await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=spec.Basic.Properties(content_type="application/json", delivery_mode=2),
                mandatory=True,
            )
            assert isinstance(confirm, spec.Basic.Ack)

        yield send
    finally:
        await connection.close()
