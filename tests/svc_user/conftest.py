"""svc_user in-process on the test environment, fed `user.verified` through the real broker."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiormq
import pytest

from kit import settings
from kit.app import make_app
from svc_user.app import service
from tests.support import eventually, identity, publisher, serve
from tests.svc_user.support import QUEUE, User, UserService, user_verified

CONFIG = settings.load("user")

Announce = Callable[[bytes], Awaitable[None]]
NewUser = Callable[..., Awaitable[User]]


@pytest.fixture(scope="package")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


@pytest.fixture(scope="package")
async def svc() -> AsyncIterator[UserService]:
    app = make_app(service, CONFIG)
    async with serve(app) as client:
        yield UserService(client, app.state.deps)


@pytest.fixture(scope="package")
async def announce(svc: UserService) -> AsyncIterator[Announce]:
    """Publish a `user.verified` message as svc_auth's relay would, once svc_user consumes them."""
    async with publisher(QUEUE) as send:
        yield functools.partial(send, "auth.exchange", "user.verified")


@pytest.fixture(scope="package")
async def new_user(svc: UserService, announce: Announce) -> NewUser:
    """Announce a new verified account and wait for its profile."""

    async def create(full_name: str = "Trần Thị Bình", email: str | None = None) -> User:
        user_id = uuid.uuid4()
        email = email or f"u{user_id.hex[:12]}@shop.test"
        await announce(user_verified(user_id, email, full_name))
        headers = identity(user_id=user_id, email=email)

        async def created() -> bool:
            return (await svc.http.get("/api/users/me", headers=headers)).status_code == 200

        await eventually(created)
        return User(user_id, email, headers)

    return create
