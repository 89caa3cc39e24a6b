"""Templated mail over SMTP, each attempt recorded in `notifications`.

A failed attempt is recorded in its own transaction and the error re-raised: the bus then rolls back
the handler's transaction (so the event stays unprocessed) and retries it; the retry that gets through
turns the same row SENT.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib
import asyncpg

from kit.settings import Settings
from svc_notify import store
from svc_notify.templates import render

SMTP_TIMEOUT = 10.0
RECORD_TIMEOUT = 2.0


class UnknownTemplate(LookupError):
    """The code asked for a template the database does not hold (a missing migration)."""


@dataclass(frozen=True, slots=True)
class Email:
    """One templated mail to send for one event."""

    event_id: uuid.UUID
    user_id: uuid.UUID
    to: str
    template: str
    values: Mapping[str, str]
    # Replacements for `values` in the stored copy, so secrets such as tokens never reach the table.
    redacted: Mapping[str, str] = field(default_factory=dict)


def _compose(template: asyncpg.Record, values: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) of `template` filled with `values`."""
    # Values come from events; collapsing whitespace keeps a stray line break out of the header.
    return " ".join(render(template["subject"], values).split()), render(template["body"], values)


class Mailer:
    """Sends templated mail for the consumer's handlers; one per process."""

    def __init__(self, config: Settings, pool: asyncpg.Pool) -> None:
        self.config = config
        self.pool = pool
        self._domain = parseaddr(config.mail_from)[1].partition("@")[2] or "localhost"

    async def deliver(self, conn: asyncpg.Connection, email: Email) -> None:
        """Send `email` and record it on `conn` (the handler's transaction); re-raise SMTP failures."""
        template = await conn.fetchrow(store.TEMPLATE, email.template)
        if template is None:
            raise UnknownTemplate(email.template)
        subject, body = _compose(template, email.values)
        record = (
            email.event_id,
            email.user_id,
            email.to,
            email.template,
            *_compose(template, {**email.values, **email.redacted}),
        )
        try:
            await self._send(email, subject, body)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # A second connection, as the handler's transaction will roll back. Bounded wait: when every
            # pooled connection is held by a handler in this same spot, skipping the record beats a deadlock.
            async with self.pool.acquire(timeout=RECORD_TIMEOUT) as own:
                await store.record_email(own, *record, error=repr(exc))
            raise
        await store.record_email(conn, *record)

    async def _send(self, email: Email, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.config.mail_from
        message["To"] = email.to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        # Derived from the event, so every retry of one event carries the same id and clients can dedupe.
        message["Message-ID"] = f"<{email.event_id}@{self._domain}>"
        message.set_content(body)
        await aiosmtplib.send(
            message, hostname=self.config.smtp_host, port=self.config.smtp_port, timeout=SMTP_TIMEOUT
        )
