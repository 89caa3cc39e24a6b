"""Reading a profile through the cache, and changing a user's data as one announced, cache-clearing unit.

Cache layout: `user:profile:{id}` holds a version number and the profile document lives at
`user:profile:{id}:v{version}:json` for 30 minutes (kit.cache namespaces). A change bumps the version
after its commit, so a reader that loaded the old row just before the commit fills a key nobody reads
any more, instead of putting the stale document back for half an hour (the race of a plain delete).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import msgspec

from kit.app import Deps
from kit.bus import publish
from kit.errors import NotFound
from kit.http import encode
from svc_user import store
from svc_user.events import PreferencesUpdated, ProfileUpdated
from svc_user.schemas import Preferences, Profile

PROFILE_TTL = 30 * 60
NO_PROFILE = "Profile not found; it is created once the email address is verified"
# Enough of the SHA-256 to tell versions apart in a URL.
AVATAR_VERSION_CHARS = 16

_preferences = msgspec.json.Decoder(Preferences)


def cache_namespace(user_id: uuid.UUID) -> str:
    return f"user:profile:{user_id}"


def profile_of(row: asyncpg.Record, public_url: str) -> Profile:
    """The profile of a row selected with the store's profile columns."""
    etag = row["avatar_etag"]
    return Profile(
        id=row["id"],
        email=row["email"],
        full_name=row["full_name"],
        phone=row["phone"],
        date_of_birth=row["date_of_birth"],
        # The version changes the URL with the image, so clients and CDNs may cache it for good.
        avatar_url=etag and f"{public_url}/api/users/{row['id']}/avatar?v={etag[:AVATAR_VERSION_CHARS]}",
        preferences=preferences_of(row),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def preferences_of(row: asyncpg.Record) -> Preferences:
    return _preferences.decode(row["preferences"])


async def cached_profile(d: Deps, user_id: uuid.UUID) -> bytes | None:
    """The profile document as JSON bytes (from Redis when it is there), or None when there is none."""

    async def load() -> bytes | None:
        async with d.db.acquire() as conn:
            row = await conn.fetchrow(store.PROFILE, user_id)
        return None if row is None else encode(profile_of(row, d.settings.public_url))

    assert d.cache is not None
    return await d.cache.get_or_load("json", PROFILE_TTL, load, namespace=cache_namespace(user_id))


@dataclass
class Change:
    """One user's data inside a transaction, with the profile row locked; `touched` names what changed."""

    conn: asyncpg.Connection
    current: asyncpg.Record
    fields: set[str] = field(default_factory=set)

    def touched(self, *fields: str) -> None:
        self.fields.update(fields)


@contextlib.asynccontextmanager
async def change(d: Deps, user_id: uuid.UUID) -> AsyncIterator[Change]:
    """Change a user's data: 404 without a profile; when anything was touched, `user.profile.updated`
    (and `user.preferences.updated` for a preference) is published with the change (outbox) and the
    cached profile is dropped after the commit."""
    async with d.db.acquire() as conn, conn.transaction():
        if not await conn.fetchval(store.LOCK_PROFILE, user_id):
            raise NotFound(NO_PROFILE)
        unit = Change(conn, await conn.fetchrow(store.LOCKED_PROFILE, user_id))
        yield unit
        if unit.fields:
            now = await conn.fetchrow(store.NAME_AND_PHONE, user_id)
            announcement = ProfileUpdated(
                user_id=user_id,
                updated_fields=sorted(unit.fields),
                full_name=now["full_name"] if "fullName" in unit.fields else None,
                phone=now["phone"] if "phone" in unit.fields else None,
            )
            await publish(conn, announcement)
            if any(name.startswith("preferences.") for name in unit.fields):
                preferences = preferences_of(await conn.fetchrow(store.PREFERENCES, user_id))
                await publish(conn, PreferencesUpdated(user_id=user_id, preferences=preferences))
    if unit.fields:
        assert d.cache is not None
        await d.cache.bump(cache_namespace(user_id), keep=PROFILE_TTL)
