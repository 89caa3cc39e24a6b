"""The delivery queue: the `notifications` table, as the event handlers fill it and the dispatcher drains it.

States: QUEUED -> SENDING -> SENT -> DELIVERED, or FAILED / BOUNCED. A worker claims due rows (by
`PRIORITY`, then the longest due) with `FOR UPDATE SKIP LOCKED` in a short transaction of its own
(SENDING, one more attempt, a claim that runs out at `next_attempt_at`), sends outside any
transaction, then records the outcome only if the row is still its claim (`attempts` unchanged): a
worker whose claim ran out and was taken over cannot overwrite the newer attempt. Every write moves
forward only; a delivery report that arrives before the worker recorded SENT is kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

WAKE_CHANNEL = "notify_queued"
# How long a claim lasts: longer than any send may take (the senders time out well before).
CLAIM_SECONDS = 120
# Due messages go out in this order of their template's kind (migration 005), oldest first within one.
PRIORITY = {"security": 0, "payment": 1, "orderUpdates": 1, "marketing": 2}

ENQUEUE = """
WITH added AS (
    INSERT INTO notifications
        (id, event_id, user_id, channel, recipient, template, template_version, locale, subject, body,
         send_body, priority, status)
    SELECT *, 'QUEUED' FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                   $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int2[])
    ON CONFLICT (event_id, channel, recipient) DO NOTHING
    RETURNING 1
)
SELECT count(*), pg_notify('notify_queued', '') FROM added
"""

_CLAIM = f"""
WITH due AS (
    SELECT id FROM notifications
    WHERE channel = $1 AND status IN ('QUEUED', 'SENDING') AND next_attempt_at <= now()
    ORDER BY priority, next_attempt_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notifications n
SET status = 'SENDING', attempts = n.attempts + 1, updated_at = now(),
    next_attempt_at = now() + interval '{CLAIM_SECONDS} seconds'
FROM due WHERE n.id = due.id
RETURNING n.id, n.event_id, n.user_id, n.recipient, n.template, n.subject,
          coalesce(n.send_body, n.body) AS body, n.attempts
"""

_SENT = """
UPDATE notifications
SET status = CASE WHEN status = 'SENDING' THEN 'SENT' ELSE status END,
    provider_id = coalesce($3, provider_id), sent_at = coalesce(sent_at, now()), send_body = NULL,
    updated_at = now()
WHERE id = $1 AND attempts = $2
"""
_RETRY = """
UPDATE notifications SET status = 'QUEUED', last_error = $3, updated_at = now(),
    next_attempt_at = now() + make_interval(secs => $4)
WHERE id = $1 AND attempts = $2 AND status = 'SENDING'
"""
_GIVE_UP = """
UPDATE notifications SET status = $3, last_error = $4, send_body = NULL, updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'SENDING'
"""
_RELEASE = """
UPDATE notifications SET status = 'QUEUED', next_attempt_at = now(), updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS held (id, attempts)
WHERE notifications.id = held.id AND notifications.attempts = held.attempts AND status = 'SENDING'
"""
# A provider's delivery report: forward only, and only for the message it names.
_REPORT = """
UPDATE notifications
SET status = $4, provider_id = $3, updated_at = now(), last_error = coalesce($5, last_error),
    send_body = NULL, sent_at = coalesce(sent_at, now()),
    delivered_at = CASE WHEN $4 = 'DELIVERED' THEN now() ELSE delivered_at END
WHERE id = $1 AND channel = $2 AND (provider_id IS NULL OR provider_id = $3)
  AND status IN ('SENDING', 'SENT') AND status IS DISTINCT FROM $4
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """One row a worker holds while it sends; `attempts` counts this attempt."""

    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    recipient: str
    template: str
    subject: str | None
    body: str
    attempts: int


async def claim(pool: asyncpg.Pool, channel: str, limit: int) -> list[Claimed]:
    async with pool.acquire() as conn, conn.transaction():
        return [Claimed(**dict(row)) for row in await conn.fetch(_CLAIM, channel, limit)]


async def sent(pool: asyncpg.Pool, row: Claimed, provider_id: str | None) -> None:
    await pool.execute(_SENT, row.id, row.attempts, provider_id)


async def retry(pool: asyncpg.Pool, row: Claimed, error: str, delay: float) -> None:
    await pool.execute(_RETRY, row.id, row.attempts, error, delay)


async def give_up(pool: asyncpg.Pool, row: Claimed, status: str, error: str) -> None:
    """FAILED (no more attempts, or the provider refused it) or BOUNCED (the recipient cannot get it)."""
    await pool.execute(_GIVE_UP, row.id, row.attempts, status, error)


async def release(pool: asyncpg.Pool, rows: list[Claimed]) -> None:
    """Hand claimed rows back to the queue, due now (a worker stopping mid-send)."""
    await pool.execute(_RELEASE, [row.id for row in rows], [row.attempts for row in rows])


async def report(
    conn: asyncpg.Connection,
    notification_id: uuid.UUID,
    channel: str,
    provider_id: str,
    status: str,
    error: str | None,
) -> bool:
    """Apply a provider's delivery report; False when it changed nothing (a repeat, late or foreign)."""
    result: str = await conn.execute(_REPORT, notification_id, channel, provider_id, status, error)
    return result != "UPDATE 0"
