"""Events svc_notify consumes, declaring only the fields it reads, and their handlers. It publishes none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import asyncpg

from kit.app import Deps
from kit.bus import Event
from svc_notify.mailer import Email, Mailer


class UserRegistered(Event):
    """From svc_auth: a new account, or a resend, whose verification mail we send."""

    routing_key = "user.registered"
    user_id: uuid.UUID
    email: str
    full_name: str
    verification_token: str
    expires_at: datetime


async def on_user_registered(conn: asyncpg.Connection, event: UserRegistered, deps: Deps) -> None:
    public_url = deps.settings.public_url.rstrip("/")

    def verification_link(token: str) -> str:
        return f"{public_url}/verify-email?{urlencode({'token': token, 'email': event.email})}"

    await Mailer(deps.settings, deps.db).deliver(
        conn,
        Email(
            event_id=event.event_id,
            user_id=event.user_id,
            to=event.email,
            template="email-verification",
            values={
                "fullName": event.full_name,
                "email": event.email,
                "link": verification_link(event.verification_token),
                "expiresAt": event.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
            redacted={"link": verification_link("REDACTED")},
        ),
    )


handlers = {UserRegistered.routing_key: on_user_registered}
