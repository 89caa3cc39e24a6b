"""`Idempotency-Key` for checkout, with Stripe's semantics.

- A key belongs to the user who sent it: (user, key) is the claim; another user's same key is unrelated.
- The claim is an INSERT ... ON CONFLICT DO NOTHING inside the checkout's own transaction. A duplicate
  that arrives while the first is running waits on that row; when the first commits, the duplicate
  finds its stored answer and replays it; when the first rolled back (503: nothing happened), the
  duplicate's INSERT goes through and it runs the checkout itself. Never two orders.
- The fingerprint is the SHA-256 of the request body as decoded and re-encoded (key order and spacing
  do not matter); the same key with another body is a 409 and changes nothing.
- Stored: the 201 and the 422s (they are the request's result: the cart was empty, the stock ran out);
  not stored: 400s (nothing started) and 503s (retrying with the same key is the point of the key).
- Keys are kept `ORDER_IDEMPOTENCY_HOURS` (24) and then forgotten by a job (`svc_order.jobs`).
"""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kit.errors import Conflict, invalid
from svc_order import store

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class Answer(msgspec.Struct, frozen=True):
    """A checkout's answer as sent (and as replayed for its key)."""

    status: int
    body: bytes
    replayed: bool = False

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return Response(self.body, self.status, headers, media_type="application/json")


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, if any: 1..255 visible ASCII characters, else a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise invalid(HEADER, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters")
    return key


def fingerprint(body: msgspec.Struct) -> bytes:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).digest()


async def claim(conn: asyncpg.Connection, user_id: uuid.UUID, key: str, print_: bytes) -> Answer | None:
    """Claim the key in the caller's transaction: None when it is ours now, else the answer to replay."""
    if await conn.fetchval(store.CLAIM_KEY, user_id, key, print_):
        return None
    row = await conn.fetchrow(store.CLAIMED_KEY, user_id, key)
    if row is None or row["response"] is None:
        # Only possible if the row vanished (forgotten) between the two statements: ask for a retry.
        raise Conflict(f"A request with this {HEADER} is in progress, retry shortly")
    if row["fingerprint"] != print_:
        raise Conflict(f"This {HEADER} was already used with a different request body")
    return Answer(row["status"], row["response"], replayed=True)


async def remember(conn: asyncpg.Connection, user_id: uuid.UUID, key: str, answer: Answer) -> None:
    await conn.execute(store.REMEMBER_ANSWER, user_id, key, answer.status, answer.body)


async def forget_old(conn: asyncpg.Connection, hours: int) -> None:
    await conn.execute(store.FORGET_KEYS, hours)
