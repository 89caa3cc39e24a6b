"""svc_notify running in-process on the test environment, the dev mail sink, and a raw AMQP publisher."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiormq
import httpx
import pytest
from pamqp import commands as spec

from devsinks import mail
from kit import settings
from kit.app import make_app
from svc_notify.app import service
from tests.support import eventually, serve
from tests.svc_notify.support import QUEUE, Notify, Publish


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


async def _consumers(connection: aiormq.abc.AbstractConnection, queue: str) -> int:
    # A passive declare of a missing queue closes its channel, hence a channel per look.
    channel = await connection.channel()
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    await channel.close()
    return declared.consumer_count or 0


@pytest.fixture(scope="module")
async def notify(broker: aiormq.abc.AbstractConnection) -> AsyncIterator[Notify]:
    app = make_app(service, settings.load("notify"))
    async with serve(app) as client:
        # Until the consumer has bound its queue, a published event would be dropped as unroutable.
        await eventually(lambda: _consumers(broker, QUEUE))
        yield Notify(client, app.state.deps.db)


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(mail.app) as client:
        yield client


@pytest.fixture
async def publish(broker: aiormq.abc.AbstractConnection) -> AsyncIterator[Publish]:
    """Publish raw bytes as svc_auth's relay would: to auth.exchange, persistent, confirmed."""
    channel = await broker.channel(publisher_confirms=True)

    async def send(body: bytes) -> None:
        confirm = await channel.basic_publish(
            body,
            exchange="auth.exchange",
            routing_key="user.registered",
            properties=spec.Basic.Properties(content_type="application/json", delivery_mode=2),
            mandatory=True,
        )
        assert isinstance(confirm, spec.Basic.Ack)

    yield send
    await channel.close()
