"""svc_auth's SQL: constants, and small async functions that take a connection."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

INSERT_USER = """
INSERT INTO users (id, email, password_hash, full_name, email_verified_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (email) DO NOTHING
RETURNING id
"""
GRANT_ROLES = "INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING"

# One round trip for login and token refresh: the account with its roles and permissions.
_ACCOUNT = """
SELECT u.id, u.email, u.password_hash, u.full_name, u.email_verified_at,
       array(SELECT role FROM user_roles WHERE user_id = u.id ORDER BY role) AS roles,
       array(SELECT DISTINCT rp.permission FROM user_roles ur
             JOIN role_permissions rp ON rp.role = ur.role
             WHERE ur.user_id = u.id ORDER BY 1) AS permissions
FROM users u
"""
ACCOUNT_BY_EMAIL = _ACCOUNT + "WHERE u.email = $1"
ACCOUNT_BY_ID = _ACCOUNT + "WHERE u.id = $1"
UPDATE_PASSWORD_HASH = "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1"

INSERT_VERIFICATION = "INSERT INTO email_verifications (token_hash, user_id, expires_at) VALUES ($1, $2, $3)"
# Marks the token used and the user verified in one statement; no row means wrong, used or expired.
USE_VERIFICATION = """
WITH token AS (
    UPDATE email_verifications v SET used_at = now()
    FROM users u
    WHERE v.token_hash = $1 AND v.user_id = u.id AND u.email = $2
      AND v.used_at IS NULL AND v.expires_at > now()
    RETURNING v.user_id
)
UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
WHERE id = (SELECT user_id FROM token)
RETURNING id, email, full_name
"""
# A used token presented again by an already verified user is a harmless repeat.
USED_VERIFICATION_OF_VERIFIED = """
SELECT 1 FROM email_verifications v JOIN users u ON u.id = v.user_id
WHERE v.token_hash = $1 AND u.email = $2 AND v.used_at IS NOT NULL AND u.email_verified_at IS NOT NULL
"""
UNVERIFIED_USER_BY_EMAIL = (
    "SELECT id, email, full_name FROM users WHERE email = $1 AND email_verified_at IS NULL"
)

INSERT_REFRESH = """
INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)
"""
# Rotation claims the presented token atomically: two concurrent refreshes cannot both win.
USE_REFRESH = """
UPDATE refresh_tokens SET used_at = now()
WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING family_id, user_id
"""
REFRESH_STATE = "SELECT family_id, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1"
REVOKE_FAMILY = "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL"
REVOKE_FAMILY_OF = """
UPDATE refresh_tokens SET revoked_at = now()
WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL
"""

ROLES = """
SELECT r.name, r.description,
       array(SELECT permission FROM role_permissions WHERE role = r.name ORDER BY 1) AS permissions
FROM roles r ORDER BY r.name
"""
KNOWN_ROLES = "SELECT array(SELECT name FROM roles WHERE name = ANY($1::text[]))"
LOCK_USER = "SELECT id FROM users WHERE id = $1 FOR UPDATE"
CLEAR_ROLES = "DELETE FROM user_roles WHERE user_id = $1"


async def issue_refresh_token(
    conn: asyncpg.Connection,
    token_hash: bytes,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    expires_at: datetime,
) -> None:
    await conn.execute(INSERT_REFRESH, token_hash, family_id, user_id, expires_at)


async def replace_roles(conn: asyncpg.Connection, user_id: uuid.UUID, roles: list[str]) -> bool:
    """Give `user_id` exactly `roles`; False when the user does not exist."""
    if await conn.fetchval(LOCK_USER, user_id) is None:
        return False
    await conn.execute(CLEAR_ROLES, user_id)
    await conn.execute(GRANT_ROLES, user_id, roles)
    return True
