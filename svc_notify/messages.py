"""From one message for a user to its QUEUED rows, one per channel and recipient the user wants.

Runs in the event handler's transaction, so the rows exist exactly when the event counts as processed
(the inbox); a redelivered event adds nothing. Nothing is sent here: the dispatcher does that.

Each row is rendered now, from the current version of the template variant for its channel in the
user's language, or in English when that language has none. A template the code sends on a channel
that has no variant in either is a fault an Admin must repair (`MissingTemplate`): the event fails,
is retried and parked in its DLQ, and is re-driven once the template is back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import asyncpg

from svc_notify import preferences, queue, store
from svc_notify.preferences import FALLBACK_LOCALE, Channel
from svc_notify.templates import render


class UnknownTemplate(LookupError):
    """The code asked for a template the database does not hold (a missing migration)."""


class MissingTemplate(LookupError):
    """A template has no variant for a channel it is sent on, in the user's language nor in English."""


@dataclass(frozen=True, slots=True)
class Message:
    """One templated message to a user for one event."""

    event_id: uuid.UUID
    user_id: uuid.UUID
    template: str
    values: Mapping[str, str]
    # The address to mail, when the event names it (a verification); else the one on record.
    email: str | None = None
    # Replacements for `values` in the stored copy, so secrets such as tokens never stay in the table.
    redacted: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Variant:
    locale: str
    version: int
    subject: str | None
    body: str


async def current_variant(conn: asyncpg.Connection, name: str, channel: str, locale: str) -> Variant | None:
    """The current text of `name` for `channel` in `locale`, else in English; None when neither exists."""
    rows = await conn.fetch(store.CURRENT_VARIANTS_IN, name, channel, [locale, FALLBACK_LOCALE])
    current = {row["locale"]: row for row in rows if row["body"] is not None}
    row = current.get(locale) or current.get(FALLBACK_LOCALE)
    return None if row is None else Variant(row["locale"], row["version"], row["subject"], row["body"])


def compose(variant: Variant, values: Mapping[str, str]) -> tuple[str | None, str]:
    """(subject, body) of `variant` filled with `values`."""
    # Values come from events; collapsing whitespace keeps a stray line break out of a mail header.
    subject = None if variant.subject is None else " ".join(render(variant.subject, values).split())
    return subject, render(variant.body, values)


async def _recipients(
    conn: asyncpg.Connection, message: Message, channel: Channel, phone: str | None
) -> list[str]:
    if channel == "email":
        email = message.email or await conn.fetchval(store.RECIPIENT_EMAIL, message.user_id)
        return [email] if email else []
    if channel == "sms":
        return [phone] if phone else []
    return [str(row["id"]) for row in await conn.fetch(store.USER_SUBSCRIPTION_IDS, message.user_id)]


async def enqueue(conn: asyncpg.Connection, message: Message, default_locale: str) -> int:
    """Queue `message` on every channel its user wants; returns how many rows were added."""
    template = await conn.fetchrow(store.TEMPLATE_META, message.template)
    if template is None:
        raise UnknownTemplate(message.template)
    contact = await conn.fetchrow(store.CONTACT, message.user_id)
    phone: str | None = None if contact is None else contact["phone"]
    wanted = preferences.decode(None if contact is None else contact["preferences"])
    locale = preferences.locale_of(wanted, default_locale)
    rows: list[tuple[object, ...]] = []
    for channel in preferences.wanted_channels(wanted, template["kind"]):
        if channel not in template["channels"]:
            continue
        recipients = await _recipients(conn, message, channel, phone)
        if not recipients:
            continue  # no address, phone number or subscription for this channel
        variant = await current_variant(conn, message.template, channel, locale)
        if variant is None:
            where = locale if locale == FALLBACK_LOCALE else f"{locale} or {FALLBACK_LOCALE}"
            raise MissingTemplate(f"{message.template} has no {channel} text in {where}")
        subject, body = compose(variant, message.values)
        shown = compose(variant, {**message.values, **message.redacted})[1] if message.redacted else body
        for recipient in recipients:
            notification_id = uuid.uuid4()
            rows.append(
                (notification_id, message.event_id, message.user_id, channel, recipient, message.template,
                 variant.version, variant.locale, subject, shown, None if shown == body else body,
                 queue.PRIORITY[template["kind"]])
            )  # fmt: skip
    if not rows:
        return 0
    added: int = await conn.fetchval(queue.ENQUEUE, *(list(column) for column in zip(*rows, strict=True)))
    return added
