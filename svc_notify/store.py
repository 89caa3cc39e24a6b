"""svc_notify's SQL: constants, and small async functions that take a connection."""

from __future__ import annotations

import uuid

import asyncpg

TEMPLATE = "SELECT name, subject, body, placeholders, updated_at FROM templates WHERE name = $1"
UPDATE_TEMPLATE = """
UPDATE templates SET subject = $2, body = $3, updated_at = now() WHERE name = $1
RETURNING name, subject, body, placeholders, updated_at
"""

# A retry updates the row of the first attempt: one row per event and channel, attempts counted.
_RECORD_EMAIL = """
INSERT INTO notifications
    (id, event_id, user_id, channel, recipient, template, subject, body, status, last_error, sent_at)
VALUES ($1, $2, $3, 'email', $4, $5, $6, $7, $8, $9, CASE WHEN $8 = 'SENT' THEN now() END)
ON CONFLICT (event_id, channel) DO UPDATE SET
    recipient = excluded.recipient,
    template = excluded.template,
    subject = excluded.subject,
    body = excluded.body,
    status = excluded.status,
    attempts = notifications.attempts + 1,
    last_error = coalesce(excluded.last_error, notifications.last_error),
    sent_at = excluded.sent_at
"""

USER_NOTIFICATIONS = """
SELECT id, channel, recipient, template, subject, body, status, created_at, sent_at
FROM notifications WHERE user_id = $1
ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3
"""
COUNT_USER_NOTIFICATIONS = "SELECT count(*) FROM notifications WHERE user_id = $1"


async def record_email(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    recipient: str,
    template: str,
    subject: str,
    body: str,
    error: str | None = None,
) -> None:
    """Record one attempt: SENT without `error`, FAILED with it."""
    status = "FAILED" if error else "SENT"
    await conn.execute(
        _RECORD_EMAIL, uuid.uuid4(), event_id, user_id, recipient, template, subject, body, status, error
    )
