"""Helpers of the svc_user tests: accounts announced as svc_auth does, identity headers, images, events."""

from __future__ import annotations

import asyncio
import json
import secrets
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiormq
import asyncpg
import httpx

from kit.app import Deps
from tests.support import eventually, identity

DATA = Path(__file__).parent / "data"
QUEUE = "user.user.verified"


@dataclass(frozen=True)
class UserService:
    """svc_user running in-process: its HTTP client and what the process holds (pool, cache)."""

    http: httpx.AsyncClient
    deps: Deps


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    headers: dict[str, str] = field(repr=False)


def admin() -> dict[str, str]:
    return identity("Admin", email="admin@shop.local")


def user_verified(user_id: uuid.UUID, email: str, full_name: str) -> bytes:
    """A `user.verified` message as svc_auth's relay publishes it."""
    return json.dumps(
        {
            "eventId": str(uuid.uuid4()),
            "occurredAt": datetime.now(UTC).isoformat(),
            "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
            "userId": str(user_id),
            "email": email,
            "fullName": full_name,
        }
    ).encode()


def png(width: int = 2, height: int = 2) -> bytes:
    """A real RGB PNG of the given size."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """A real 16x16 JPEG (the Python logo from CPython's test data)."""
    return (DATA / "logo.jpg").read_bytes()


def webp() -> bytes:
    """A real 16x16 extended-format WebP with alpha (CPython's test data)."""
    return (DATA / "logo.webp").read_bytes()


async def announced(db: asyncpg.Pool, user_id: uuid.UUID) -> list[list[str]]:
    """The `updatedFields` of every `user.profile.updated` the user's changes wrote to the outbox."""
    return [payload["updatedFields"] for payload in await announcements(db, user_id)]


async def announcements(db: asyncpg.Pool, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every `user.profile.updated` payload the user's changes wrote to the outbox, oldest first."""
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE routing_key = 'user.profile.updated'"
        " AND convert_from(payload, 'UTF8')::jsonb->>'userId' = $1 ORDER BY id",
        str(user_id),
    )
    return [json.loads(row["payload"]) for row in rows]


class ProfileUpdates:
    """The `user.profile.updated` messages of one user, as a consumer bound to user.exchange gets them."""

    def __init__(self, channel: aiormq.abc.AbstractChannel, queue: str, user_id: uuid.UUID | str) -> None:
        self.channel = channel
        self.queue = queue
        self.user_id = str(user_id)
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def listen(
        cls, connection: aiormq.abc.AbstractConnection, user_id: uuid.UUID | str
    ) -> ProfileUpdates:
        channel = await connection.channel()
        queue = (await channel.queue_declare(exclusive=True)).queue
        assert queue is not None
        await channel.queue_bind(queue, "user.exchange", routing_key="user.profile.updated")
        return cls(channel, queue, user_id)

    async def _drain(self) -> int:
        while (message := await self.channel.basic_get(self.queue, no_ack=True)).delivery_tag is not None:
            event = json.loads(message.body)
            if event["userId"] == self.user_id:
                self.events.append(event)
        return len(self.events)

    async def settled(self, expected: int) -> list[dict[str, Any]]:
        """The events once `expected` have arrived and a duplicate has had time to follow."""

        async def arrived() -> bool:
            return await self._drain() >= expected

        await eventually(arrived)
        await asyncio.sleep(0.5)
        await self._drain()
        await self.channel.close()
        return self.events
