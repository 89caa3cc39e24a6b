"""Events svc_notify consumes, declaring only the fields it reads, and their handlers. It publishes none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import asyncpg

from kit.app import Deps
from kit.bus import Event, Handler
from svc_notify.mailer import Email, Mailer


class UserRegistered(Event):
    """From svc_auth: a new account, or a resend, whose verification mail we send."""

    routing_key = "user.registered"
    user_id: uuid.UUID
    email: str
    full_name: str
    verification_token: str
    expires_at: datetime


class Handlers:
    """The handlers by routing key, bound to the running process's settings and mailer."""

    def __init__(self, deps: Deps) -> None:
        self.public_url = deps.settings.public_url.rstrip("/")
        self.mailer = Mailer(deps.settings, deps.db)

    def by_routing_key(self) -> dict[str, Handler]:
        return {UserRegistered.routing_key: self.user_registered}

    async def user_registered(self, conn: asyncpg.Connection, event: UserRegistered) -> None:
        await self.mailer.deliver(
            conn,
            Email(
                event_id=event.event_id,
                user_id=event.user_id,
                to=event.email,
                template="email-verification",
                values={
                    "fullName": event.full_name,
                    "email": event.email,
                    "link": self._verification_link(event.verification_token, event.email),
                    "expiresAt": event.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                },
                redacted={"link": self._verification_link("REDACTED", event.email)},
            ),
        )

    def _verification_link(self, token: str, email: str) -> str:
        return f"{self.public_url}/verify-email?{urlencode({'token': token, 'email': email})}"


def handlers(deps: Deps) -> dict[str, Handler]:
    """The consumer's handlers, bound to the process's settings and mailer."""
    return Handlers(deps).by_routing_key()
