"""Passwords, access tokens and opaque tokens: the cryptography of svc_auth, kept pure and small."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kit.settings import Settings

# OWASP's password storage cheat sheet: argon2id, m=19 MiB, t=2, p=1 (the first of its equivalent sets).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when an email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """argon2id off the event loop: a hash takes ~20 ms of CPU."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, spend the same time and say False."""

    def check() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_opaque_token() -> tuple[str, bytes]:
    """(token for the client, SHA-256 digest to store): 256 random bits, URL-safe."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def access_token(
    config: Settings,
    user_id: uuid.UUID,
    email: str,
    name: str,
    roles: Sequence[str],
    permissions: Sequence[str],
    now: int | None = None,
) -> str:
    """The contract's HS256 access token (CONTRACT.md section 3)."""
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "email": email,
        "name": name,
        "roles": list(roles),
        "permissions": list(permissions),
        "iat": issued,
        "exp": issued + config.access_token_minutes * 60,
        "iss": config.jwt_issuer,
        "aud": config.jwt_audience,
    }
    return jwt.encode(claims, config.jwt_secret.reveal(), algorithm="HS256")


def read_access_token(config: Settings, token: str) -> dict[str, Any]:
    """Verify a token we issued: HS256 only, iss/aud/exp checked. Raises jwt.InvalidTokenError."""
    return jwt.decode(
        token,
        config.jwt_secret.reveal(),
        algorithms=["HS256"],
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
        leeway=30,
        options={"require": ["sub", "exp", "iat", "iss", "aud"]},
    )
