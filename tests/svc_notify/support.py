"""Helpers of the svc_notify tests: events as svc_auth publishes them, and looks at the mail and the rows."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

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
