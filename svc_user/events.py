"""Events svc_user publishes (user.exchange) and consumes (`user.verified` from auth.exchange)."""

from __future__ import annotations

import uuid

import asyncpg

from kit.bus import Event
from kit.http import encode
from svc_user import store
from svc_user.schemas import Preferences

DEFAULT_PREFERENCES = encode(Preferences())


class ProfileUpdated(Event):
    """A user's data changed; `updatedFields` names what (`fullName`, `preferences.language`, `addresses`)."""

    routing_key = "user.profile.updated"
    user_id: uuid.UUID
    updated_fields: list[str]
    # The new name when it is among the changes, for services that show it (review authors).
    full_name: str | None = None
    # The phone number (E.164, or null once removed) when `phone` is among the changes, for SMS.
    phone: str | None = None


class PreferencesUpdated(Event):
    """A user's whole preferences document after a change (language, channels per kind of message)."""

    routing_key = "user.preferences.updated"
    user_id: uuid.UUID
    preferences: Preferences


class UserVerified(Event):
    """From svc_auth: an account whose email is verified, which gets its profile now."""

    routing_key = "user.verified"
    user_id: uuid.UUID
    email: str
    full_name: str


async def on_user_verified(conn: asyncpg.Connection, event: UserVerified) -> None:
    # The inbox drops a redelivered event; ON CONFLICT covers a second event for the same account.
    await store.create_profile(conn, event.user_id, event.email, event.full_name, DEFAULT_PREFERENCES)


handlers = {UserVerified.routing_key: on_user_verified}
