"""The dev push sink: a Web Push service (RFC 8030) that hands out subscriptions and decrypts what it gets.

    python -m devsinks.push     # HTTP on PUSHSINK_PORT (8027)

- `POST /api/subscriptions` plays a browser's `pushManager.subscribe()`: it makes a P-256 key pair and
  an authentication secret and answers the PushSubscription JSON `{id, endpoint, keys: {p256dh, auth}}`
  to register with svc_notify. It keeps the private key, so it can decrypt what arrives.
- `POST /push/{id}` is the push endpoint: it requires a valid VAPID `Authorization` (RFC 8292: a signed
  ES256 JWT for this origin, not expired, with a `sub`), a `TTL` and `Content-Encoding: aes128gcm`, and
  decrypts the body (RFC 8291) with http_ece; 201 when accepted, 404 for an unknown subscription, 410
  for one that was expired with `DELETE /api/subscriptions/{id}`.
- `GET /api/messages?subscription=<id>` lists the decrypted pushes, newest first, with their headers.

Everything lives in memory only. Dev only: nothing reaches a browser.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit import logs, settings
from kit.http import JSON, Model

CAPACITY = 10_000
MAX_PAYLOAD = 4096  # RFC 8030 section 7.2: a push service must accept at least 4096 bytes


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Push(Model):
    subscription_id: str
    ttl: int
    urgency: str | None
    topic: str | None
    payload: object  # the decrypted JSON, or its text when it is not JSON
    received_at: datetime


@dataclass
class Device:
    """One subscription the sink handed out, with the private half a browser would keep."""

    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    expired: bool = False


@dataclass
class PushService:
    origin: str
    devices: dict[str, Device] = field(default_factory=dict)
    pushes: deque[Push] = field(default_factory=lambda: deque(maxlen=CAPACITY))


def _service(request: Request) -> PushService:
    return request.app.state.push  # type: ignore[no-any-return]


def _refusal(status: int, message: str) -> Response:
    return JSON({"code": status, "errno": status, "error": message, "message": message}, status)


async def subscribe(request: Request) -> Response:
    service = _service(request)
    device = Device(str(uuid.uuid4()), ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
    service.devices[device.id] = device
    public = device.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return JSON(
        {
            "id": device.id,
            "endpoint": f"{service.origin}/push/{device.id}",
            "expirationTime": None,
            "keys": {"p256dh": _b64url(public), "auth": _b64url(device.auth)},
        },
        201,
    )


async def expire(request: Request) -> Response:
    device = _service(request).devices.get(request.path_params["id"])
    if device is None:
        return _refusal(404, "no such subscription")
    device.expired = True
    return Response(status_code=204)


def _vapid_problem(authorization: str, origin: str) -> str | None:
    """Why `authorization` is not a valid VAPID header for this push service, or None when it is."""
    if not authorization.lower().startswith("vapid "):
        return "Authorization must use the vapid scheme (RFC 8292)"
    try:
        if not Vapid.verify(authorization):
            return "the VAPID signature does not verify"
        token = dict(part.split("=", 1) for part in authorization[6:].split(","))["t"]
        claims = json.loads(_b64url_decode(token.split(".")[1]))
    except Exception as exc:  # py_vapid raises assorted errors for a malformed header
        return f"malformed VAPID header: {exc!r}"
    now = time.time()
    if claims.get("aud") != origin:
        return f"aud must be {origin}"
    if not now < claims.get("exp", 0) <= now + 24 * 3600:
        return "exp must be in the next 24 hours"
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "sub must be a mailto: or https: contact"
    return None


async def receive(request: Request) -> Response:
    service = _service(request)
    device = service.devices.get(request.path_params["id"])
    if device is None:
        return _refusal(404, "no such subscription")
    if device.expired:
        return _refusal(410, "subscription expired")
    if problem := _vapid_problem(request.headers.get("authorization", ""), service.origin):
        return _refusal(401, problem)
    ttl = request.headers.get("ttl", "")
    if not ttl.isdigit():
        return _refusal(400, "a TTL header is required")
    if request.headers.get("content-encoding") != "aes128gcm":
        return _refusal(415, "Content-Encoding must be aes128gcm (RFC 8291)")
    body = await request.body()
    if len(body) > MAX_PAYLOAD:
        return _refusal(413, "payload too large")
    try:
        plain = http_ece.decrypt(body, private_key=device.private_key, auth_secret=device.auth)
    except Exception as exc:  # http_ece raises ECEException or cryptography's InvalidTag
        return _refusal(400, f"cannot decrypt: {exc!r}")
    try:
        payload: object = json.loads(plain)
    except ValueError:
        payload = plain.decode(errors="replace")
    service.pushes.appendleft(
        Push(
            subscription_id=device.id,
            ttl=int(ttl),
            urgency=request.headers.get("urgency"),
            topic=request.headers.get("topic"),
            payload=payload,
            received_at=datetime.now(UTC),
        )
    )
    return Response(status_code=201, headers={"location": f"{service.origin}/message/{uuid.uuid4()}"})


async def list_pushes(request: Request) -> Response:
    wanted = request.query_params.get("subscription")
    return JSON([p for p in _service(request).pushes if wanted is None or p.subscription_id == wanted])


async def clear_pushes(request: Request) -> Response:
    _service(request).pushes.clear()
    return Response(status_code=204)


async def live(request: Request) -> Response:
    return JSON({"status": "ok"})


def make_app(config: settings.Settings | None = None) -> Starlette:
    """The sink's app; `config` defaults to the environment's `pushsink` settings."""
    config = config or settings.load("pushsink")
    logs.setup("pushsink", config.log_level)
    url = urlsplit(config.url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.push = PushService(origin=f"{url.scheme}://{url.netloc}")
        yield

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/api/subscriptions", subscribe, methods=["POST"]),
            Route("/api/subscriptions/{id}", expire, methods=["DELETE"]),
            Route("/push/{id}", receive, methods=["POST"]),
            Route("/api/messages", list_pushes, methods=["GET"]),
            Route("/api/messages", clear_pushes, methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.push:app", "pushsink")
