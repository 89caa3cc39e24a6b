"""svc_notify's SQL: constants, and small async functions that take a connection."""

from __future__ import annotations

# Templates: the registry (what the code sends) and the versions of each (name, channel, locale) text.
TEMPLATE_META = "SELECT name, kind, channels, placeholders FROM templates WHERE name = $1"
TEMPLATE_META_LOCKED = TEMPLATE_META + " FOR UPDATE"
TEMPLATE_NAMES = "SELECT name, kind, channels, placeholders FROM templates ORDER BY name"
_LATEST = "SELECT DISTINCT ON (channel, locale) channel, locale, version, subject, body, created_at"
CURRENT_VARIANTS = f"{_LATEST} FROM template_versions WHERE name = $1 ORDER BY channel, locale, version DESC"
CURRENT_VARIANTS_IN = (
    f"{_LATEST} FROM template_versions WHERE name = $1 AND channel = $2 AND locale = ANY($3::text[])"
    " ORDER BY channel, locale, version DESC"
)
VARIANT_HISTORY = """
SELECT channel, locale, version, subject, body, created_at FROM template_versions
WHERE name = $1 AND channel = $2 AND locale = $3 ORDER BY version DESC
"""
# The next version of a variant; run after TEMPLATE_META_LOCKED, so two edits never take one number.
ADD_VERSION = """
INSERT INTO template_versions (name, channel, locale, version, subject, body)
SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5
FROM template_versions WHERE name = $1 AND channel = $2 AND locale = $3
RETURNING channel, locale, version, subject, body, created_at
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
RECIPIENT_EMAIL = "SELECT email FROM recipients WHERE user_id = $1"
# Contacts from svc_user's events; each fact is kept from the newest event that set it.
CONTACT = "SELECT phone, preferences::text AS preferences FROM contacts WHERE user_id = $1"
SET_PHONE = """
INSERT INTO contacts (user_id, phone, phone_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, phone_at = excluded.phone_at
WHERE contacts.phone_at IS NULL OR contacts.phone_at < excluded.phone_at
"""
SET_PREFERENCES = """
INSERT INTO contacts (user_id, preferences, preferences_at) VALUES ($1, $2::jsonb, $3)
ON CONFLICT (user_id) DO UPDATE
SET preferences = excluded.preferences, preferences_at = excluded.preferences_at
WHERE contacts.preferences_at IS NULL OR contacts.preferences_at < excluded.preferences_at
"""
USER_SUBSCRIPTION_IDS = "SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at"
# A browser registering its endpoint again (a new login, rotated keys) moves it to the caller.
ADD_SUBSCRIPTION = """
INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (endpoint) DO UPDATE
SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth
RETURNING id, endpoint, created_at
"""
USER_SUBSCRIPTIONS = (
    "SELECT id, endpoint, created_at FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id"
)
REMOVE_SUBSCRIPTION = "DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2"
UPSERT_PRODUCT = """
INSERT INTO products (product_id, name, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
WHERE products.updated_at < excluded.updated_at
"""
PRODUCT_NAME = "SELECT name FROM products WHERE product_id = $1"

# A user's notifications, `?search=` in their subject or template name ($2, an ILIKE pattern or NULL).
_OF_USER = (
    "FROM notifications WHERE user_id = $1 AND ($2::text IS NULL OR subject ILIKE $2 OR template ILIKE $2)"
)
# `?sortBy=` -> column. Each (sortBy, direction) pair is its own statement, so each is prepared once.
SORTS = {"createdAt": "created_at", "sentAt": "sent_at", "status": "status", "subject": "subject"}
USER_NOTIFICATIONS = {
    (by, direction): f"""
SELECT id, channel, recipient, template, subject, body, status, created_at, sent_at, delivered_at,
       count(*) OVER () AS total
{_OF_USER}
ORDER BY {column} {direction} NULLS LAST, id {direction} LIMIT $3 OFFSET $4
"""
    for by, column in SORTS.items()
    for direction in ("ASC", "DESC")
}
COUNT_USER_NOTIFICATIONS = f"SELECT count(*) {_OF_USER}"


STATUSES = ("QUEUED", "SENDING", "SENT", "DELIVERED", "FAILED", "BOUNCED")
# Admin search: every filter optional ($1 status, $2 channel, $3 recipient, $4 template, $5 from, $6 to).
_SEARCH = """
FROM notifications
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2)
  AND ($3::text IS NULL OR recipient = $3) AND ($4::text IS NULL OR template = $4)
  AND ($5::timestamptz IS NULL OR created_at >= $5) AND ($6::timestamptz IS NULL OR created_at < $6)
"""
SEARCH = {
    direction: f"""
SELECT id, event_id, user_id, channel, recipient, template, template_version, locale, subject, body, status,
       attempts, provider_id, last_error, created_at, updated_at, sent_at, delivered_at,
       count(*) OVER () AS total
{_SEARCH}
ORDER BY created_at {direction}, id {direction} LIMIT $7 OFFSET $8
"""
    for direction in ("ASC", "DESC")
}
COUNT_SEARCH = f"SELECT count(*) {_SEARCH}"
