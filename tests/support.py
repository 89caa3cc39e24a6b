"""Helpers shared by the tests: waiting for a condition, serving an app in-process, publishing events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

import aiormq
import grpc
import httpx
import msgspec
from pamqp import commands as spec
from redis.asyncio import Redis
from starlette.applications import Starlette

from kit.grpc import GrpcServer, channel

T = TypeVar("T")


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
            await ch.channel_ready()
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


@contextlib.asynccontextmanager
async def own_redis(port: int) -> AsyncIterator[str]:
    """A Redis server of the test's own on `port`, to pause or stop without touching the shared one;
    yields its URL once it answers."""
    server = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = Redis(port=port)
        await eventually(probe.ping, within=5)
        await probe.aclose()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        await server.wait()
