"""svc_notify running in-process on the test environment (with retries a test can wait for), the dev mail
sink in-process, the dev SMS and push sinks as processes (svc_notify calls them over HTTP), and a raw
AMQP publisher."""

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
from svc_notify.config import NotifyConfig
from tests.support import publisher, serve
from tests.svc_notify.support import QUEUE, Notify, Publish, Send, process


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[aiormq.abc.AbstractConnection]:
    connection = await aiormq.connect(os.environ["AMQP_URL"])
    yield connection
    await connection.close()


# Retries a test can wait for: 0.2, 0.4, 0.8 ... seconds.
QUICK_RETRIES = {f"NOTIFY_{channel}_RETRY_SECONDS": "0.2" for channel in ("EMAIL", "SMS", "PUSH")}


@pytest.fixture(scope="module")
async def notify() -> AsyncIterator[Notify]:
    app = make_app(service, settings.load("notify", {**os.environ, **QUICK_RETRIES}, own=NotifyConfig))
    async with serve(app) as client:
        yield Notify(client, app.state.deps.db)


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(mail.app) as client:
        yield client


@pytest.fixture
async def send(notify: Notify) -> AsyncIterator[Send]:
    """Publish as svc_auth, svc_user, svc_order and svc_payment do, once svc_notify consumes all of it."""
    async with publisher("notify.payment.refunded") as publish:
        queues = (
            "user.verified",
            "user.profile.updated",
            "user.preferences.updated",
            "order.confirmed",
            "order.cancelled",
            "product.created",
            "inventory.low-stock",
        )
        for queue in (f"notify.{key}" for key in queues):
            async with publisher(queue):
                pass
        yield publish


@pytest.fixture(scope="module")
async def sms_sink() -> AsyncIterator[httpx.AsyncClient]:
    async with process("devsinks.sms", "smssink") as client:
        yield client


@pytest.fixture(scope="module")
async def push_sink() -> AsyncIterator[httpx.AsyncClient]:
    async with process("devsinks.push", "pushsink") as client:
        yield client


@pytest.fixture(scope="module")
async def publish(notify: Notify) -> AsyncIterator[Publish]:
    """Publish raw bytes as svc_auth's relay would (to auth.exchange), once svc_notify consumes them."""
    async with publisher(QUEUE) as send:
        yield functools.partial(send, "auth.exchange", "user.registered")
