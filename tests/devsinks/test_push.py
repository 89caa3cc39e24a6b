"""The dev push sink: hands out subscriptions, refuses pushes a real push service would, decrypts the rest."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from py_vapid import Vapid
from pywebpush import WebPusher

from devsinks import push
from kit import settings
from tests.support import serve

pytestmark = pytest.mark.offline

ORIGIN = settings.service_url("pushsink")


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(push.make_app()) as client:
        yield client


def _vapid(audience: str = ORIGIN) -> dict[str, str]:
    key = Vapid()
    key.generate_keys()
    signed: dict[str, str] = key.sign(
        {"sub": "mailto:ops@shop.test", "aud": audience, "exp": int(time.time()) + 3600}
    )
    return signed


def _encrypted(subscription: dict[str, Any], payload: bytes) -> bytes:
    body: bytes = WebPusher(subscription).encode(payload, "aes128gcm")["body"]
    return body


async def _push(
    sink: httpx.AsyncClient, subscription: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    path = subscription["endpoint"].removeprefix(ORIGIN)
    body = _encrypted(subscription, b'{"title": "Hi"}')
    return await sink.post(path, content=body, headers=headers)


async def test_an_encrypted_push_with_vapid_is_accepted_and_listed_decrypted(sink: httpx.AsyncClient) -> None:
    subscription = (await sink.post("/api/subscriptions")).json()
    assert subscription["endpoint"] == f"{ORIGIN}/push/{subscription['id']}"
    headers = {**_vapid(), "TTL": "60", "Content-Encoding": "aes128gcm", "Topic": "abc"}
    assert (await _push(sink, subscription, headers)).status_code == 201
    [received] = (await sink.get("/api/messages", params={"subscription": subscription["id"]})).json()
    assert (received["payload"], received["ttl"], received["topic"]) == ({"title": "Hi"}, 60, "abc")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"TTL": "60", "Content-Encoding": "aes128gcm"}, 401),  # no VAPID
        ({**_vapid("https://elsewhere.example"), "TTL": "60", "Content-Encoding": "aes128gcm"}, 401),
        ({**_vapid(), "Content-Encoding": "aes128gcm"}, 400),  # no TTL
        ({**_vapid(), "TTL": "60", "Content-Encoding": "aesgcm"}, 415),
    ],
)
async def test_a_push_a_real_push_service_would_refuse_is_refused(
    sink: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    subscription = (await sink.post("/api/subscriptions")).json()
    assert (await _push(sink, subscription, headers)).status_code == status
    assert (await sink.get("/api/messages", params={"subscription": subscription["id"]})).json() == []


async def test_an_expired_subscription_answers_gone_and_an_unknown_one_not_found(
    sink: httpx.AsyncClient,
) -> None:
    subscription = (await sink.post("/api/subscriptions")).json()
    assert (await sink.delete(f"/api/subscriptions/{subscription['id']}")).status_code == 204
    headers = {**_vapid(), "TTL": "60", "Content-Encoding": "aes128gcm"}
    assert (await _push(sink, subscription, headers)).status_code == 410
    unknown = {**subscription, "endpoint": f"{ORIGIN}/push/nope"}
    assert (await _push(sink, unknown, headers)).status_code == 404
