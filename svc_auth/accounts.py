"""Account operations shared by the HTTP handlers and the dev seed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from kit.bus import publish
from kit.settings import Settings
from svc_auth import credentials, store
from svc_auth.events import UserRegistered, UserVerified
from svc_auth.schemas import TokenPair

VERIFICATION_WINDOW = timedelta(hours=24)


async def create_account(
    conn: asyncpg.Connection,
    email: str,
    password_hash: str,
    full_name: str,
    roles: Sequence[str],
    *,
    verified: bool,
    user_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Insert a user with `roles` and announce it; None when the email is taken. Call in a transaction.

    An unverified account gets a verification token, mailed by svc_notify from `user.registered`;
    a verified one (the seed) is announced with `user.verified` so its profile is created.
    """
    user_id = user_id or uuid.uuid4()
    now = datetime.now(UTC)
    if (
        await conn.fetchval(
            store.INSERT_USER, user_id, email, password_hash, full_name, now if verified else None
        )
        is None
    ):
        return None
    await conn.execute(store.GRANT_ROLES, user_id, list(roles))
    if verified:
        await publish(conn, UserVerified(user_id=user_id, email=email, full_name=full_name))
    else:
        await send_verification(conn, user_id, email, full_name)
    return user_id


async def send_verification(
    conn: asyncpg.Connection, user_id: uuid.UUID, email: str, full_name: str, *, resent: bool = False
) -> None:
    token, token_hash = credentials.new_opaque_token()
    expires_at = datetime.now(UTC) + VERIFICATION_WINDOW
    await conn.execute(store.INSERT_VERIFICATION, token_hash, user_id, expires_at)
    await publish(
        conn,
        UserRegistered(
            user_id=user_id,
            email=email,
            full_name=full_name,
            verification_token=token,
            expires_at=expires_at,
            resent=resent,
        ),
    )


async def issue_tokens(
    conn: asyncpg.Connection, config: Settings, account: asyncpg.Record, family_id: uuid.UUID | None = None
) -> TokenPair:
    """A new access token and a refresh token in `family_id` (a new family at login)."""
    refresh, refresh_hash = credentials.new_opaque_token()
    expires_at = datetime.now(UTC) + timedelta(days=config.refresh_token_days)
    await store.issue_refresh_token(conn, refresh_hash, family_id or uuid.uuid4(), account["id"], expires_at)
    access = credentials.access_token(
        config,
        account["id"],
        account["email"],
        account["full_name"],
        account["roles"],
        account["permissions"],
    )
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=config.access_token_minutes * 60)
