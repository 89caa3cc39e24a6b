"""svc_notify's SQL: constants, and small async functions that take a connection."""

from __future__ import annotations

import uuid

import asyncpg

TEMPLATE = "SELECT name, subject, body, placeholders, updated_at FROM templates WHERE name = $1"
UPDATE_TEMPLATE = """
UPDATE templates SET subject = $2, body = $3, updated_at = now() WHERE name = $1
RETURNING name, subject, body, placeholders, updated_at
"""

# Recipients: a newer event's facts win; a late, older one changes nothing.
UPSERT_RECIPIENT = """
INSERT INTO recipients (user_id, email, full_name, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE
SET email = excluded.email, full_name = excluded.full_name, updated_at = excluded.updated_at
WHERE recipients.updated_at < excluded.updated_at
"""
RENAME_RECIPIENT = (
    "UPDATE recipients SET full_name = $2, updated_at = $3 WHERE user_id = $1 AND updated_at < $3"
)
RECIPIENT = "SELECT email, full_name FROM recipients WHERE user_id = $1"
UPSERT_PRODUCT = """
INSERT INTO products (product_id, name, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
WHERE products.updated_at < excluded.updated_at
"""
PRODUCT_NAME = "SELECT name FROM products WHERE product_id = $1"

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

# A user's notifications, `?search=` in their subject or template name ($2, an ILIKE pattern or NULL).
_OF_USER = (
    "FROM notifications WHERE user_id = $1 AND ($2::text IS NULL OR subject ILIKE $2 OR template ILIKE $2)"
)
# `?sortBy=` -> column. Each (sortBy, direction) pair is its own statement, so each is prepared once.
SORTS = {"createdAt": "created_at", "sentAt": "sent_at", "status": "status", "subject": "subject"}
USER_NOTIFICATIONS = {
    (by, direction): f"""
SELECT id, channel, recipient, template, subject, body, status, created_at, sent_at, count(*) OVER () AS total
{_OF_USER}
ORDER BY {column} {direction} NULLS LAST, id {direction} LIMIT $3 OFFSET $4
"""
    for by, column in SORTS.items()
    for direction in ("ASC", "DESC")
}
COUNT_USER_NOTIFICATIONS = f"SELECT count(*) {_OF_USER}"


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
