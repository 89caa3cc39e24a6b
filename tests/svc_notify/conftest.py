"""svc_notify running in-process on the test environment, the dev mail sink, and a raw AMQP publisher."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator

import aiormq
import httpx
import pytest

from devsinks import mail
from kit import settings
from kit.app import make_app
from svc_notify.app import service
from tests.support import publisher, serve
from tests.svc_notify.support import QUEUE, Notify, Publish


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


@pytest.fixture(scope="module")
async def notify() -> AsyncIterator[Notify]:
    app = make_app(service, settings.load("notify"))
    async with serve(app) as client:
        yield Notify(client, app.state.deps.db)


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(mail.app) as client:
        yield client


@pytest.fixture(scope="module")
async def publish(notify: Notify) -> AsyncIterator[Publish]:
    """Publish raw bytes as svc_auth's relay would (to auth.exchange), once svc_notify consumes them."""
    async with publisher(QUEUE) as send:
        yield functools.partial(send, "auth.exchange", "user.registered")
