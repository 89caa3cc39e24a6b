"""Helpers of the svc_notify tests: events as the other services publish them, looks at the mail and the
rows, and the dev sinks svc_notify must reach over the network as processes of their own."""

from __future__ import annotations

import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from kit import settings
from tests.processes import started
from tests.support import eventually

QUEUE = "notify.user.registered"

Publish = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class Notify:
    """svc_notify running in-process: its HTTP client and its database pool."""

    http: httpx.AsyncClient
    db: asyncpg.Pool


def user_registered(user_id: uuid.UUID | None = None, email: str | None = None) -> dict[str, Any]:
    """A `user.registered` payload as svc_auth publishes it, for a new random user unless told."""
    now = datetime.now(UTC)
    return {
        "eventId": str(uuid.uuid4()),
        "occurredAt": now.isoformat(),
        "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        "userId": str(user_id or uuid.uuid4()),
        "email": email or f"{uuid.uuid4().hex}@example.com",
        "fullName": "Nguyễn Văn An",
        "verificationToken": secrets.token_urlsafe(32),
        "expiresAt": (now + timedelta(hours=24)).isoformat(),
        "resent": False,
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def mails_to(sink: httpx.AsyncClient, email: str) -> list[dict[str, Any]]:
    response = await sink.get("/api/messages", params={"to": email})
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def notification(notify: Notify, event: dict[str, Any]) -> asyncpg.Record | None:
    return await notify.db.fetchrow(
        "SELECT * FROM notifications WHERE event_id = $1", uuid.UUID(event["eventId"])
    )


async def sent(notify: Notify, event: dict[str, Any]) -> asyncpg.Record:
    """The event's notification once it is SENT."""

    async def check() -> asyncpg.Record | None:
        row = await notification(notify, event)
        return row if row is not None and row["status"] == "SENT" else None

    return await eventually(check)


Send = Callable[[str, str, Mapping[str, object]], Awaitable[None]]
"""`send(exchange, routing_key, fields)`: publish an event as its service would."""


def event(**fields: object) -> dict[str, object]:
    return {"eventId": str(uuid.uuid4()), "occurredAt": datetime.now(UTC).isoformat(), **fields}


async def processed(notify: Notify, published: Mapping[str, object]) -> None:
    """Once svc_notify has handled `published` (its inbox holds the event id)."""
    event_id = uuid.UUID(str(published["eventId"]))

    async def check() -> bool:
        return bool(await notify.db.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", event_id))

    await eventually(check)


async def customer(notify: Notify, send: Send, name: str = "Trần Thị Bình") -> dict[str, object]:
    """A verified user, announced as svc_auth announces one, and on record at svc_notify."""
    user = event(userId=str(uuid.uuid4()), email=f"{uuid.uuid4().hex}@example.com", fullName=name)
    await send("auth.exchange", "user.verified", user)
    await processed(notify, user)
    return user


def confirmed(user: Mapping[str, object], number: str = "ORD-20261125-0001") -> dict[str, object]:
    return event(
        orderId=str(uuid.uuid4()),
        userId=user["userId"],
        orderNumber=number,
        totalAmount=1250000.0,
        items=[],
        discountCode=None,
    )


@contextlib.asynccontextmanager
async def process(module: str, service: str) -> AsyncIterator[httpx.AsyncClient]:
    """`python -m <module>` listening on `service`'s port, for a peer that must be reached over the network
    (the dev SMS and push sinks); yields a client of it once `/health/live` answers."""
    url = settings.service_url(service)
    with started("-m", module) as child:
        await child.ready(f"{url}/health/live", within=15)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client
