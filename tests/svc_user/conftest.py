"""svc_user in-process on the test environment, fed `user.verified` through the real broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiormq
import pytest
from pamqp import commands as spec

from kit import settings
from kit.app import make_app
from svc_user.app import service
from tests.support import eventually, serve
from tests.svc_user.support import QUEUE, User, UserService, identity, user_verified

CONFIG = settings.load("user")

Announce = Callable[[bytes], Awaitable[None]]
NewUser = Callable[..., Awaitable[User]]


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


async def _consumed(connection: aiormq.abc.AbstractConnection, queue: str) -> bool:
    channel = await connection.channel()
    try:
        declared = await channel.queue_declare(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False  # the failed passive declare closed the channel
    await channel.close()
    return bool(declared.consumer_count)


@pytest.fixture(scope="session")
async def svc(broker: aiormq.abc.AbstractConnection) -> AsyncIterator[UserService]:
    app = make_app(service, CONFIG)
    async with serve(app) as client:
        # Until the consumer has bound its queue, an announced account would be dropped as unroutable.
        await eventually(lambda: _consumed(broker, QUEUE))
        yield UserService(client, app.state.deps)


@pytest.fixture(scope="session")
async def announce(broker: aiormq.abc.AbstractConnection) -> AsyncIterator[Announce]:
    """Publish a `user.verified` message as svc_auth's relay would: persistent and confirmed."""
    channel = await broker.channel(publisher_confirms=True)

    async def send(body: bytes) -> None:
        confirm = await channel.basic_publish(
            body,
            exchange="auth.exchange",
            routing_key="user.verified",
            properties=spec.Basic.Properties(content_type="application/json", delivery_mode=2),
            mandatory=True,
        )
        assert isinstance(confirm, spec.Basic.Ack)

    yield send
    await channel.close()


@pytest.fixture(scope="session")
async def new_user(svc: UserService, announce: Announce) -> NewUser:
    """Announce a new verified account and wait for its profile."""

    async def create(full_name: str = "Trần Thị Bình", email: str | None = None) -> User:
        user_id = uuid.uuid4()
        email = email or f"u{user_id.hex[:12]}@shop.test"
        await announce(user_verified(user_id, email, full_name))
        headers = identity(user_id, email)

        async def created() -> bool:
            return (await svc.http.get("/api/users/me", headers=headers)).status_code == 200

        await eventually(created)
        return User(user_id, email, headers)

    return create
