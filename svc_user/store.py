"""svc_user's SQL: constants, and small async functions that take a connection."""

from __future__ import annotations

import uuid

import asyncpg

# A profile row as every reader wants it: the avatar's version comes along, never its bytes.
_PROFILE_COLUMNS = (
    "p.id, p.email, p.full_name, p.phone, p.date_of_birth, p.preferences::text AS preferences,"
    " a.etag AS avatar_etag, p.created_at, p.updated_at"
)
_PROFILE = f"SELECT {_PROFILE_COLUMNS} FROM profiles p LEFT JOIN avatars a ON a.user_id = p.id"

PROFILE = _PROFILE + " WHERE p.id = $1"
# Every change to a user's data starts by locking the profile row: it serialises one user's changes, so
# their events leave in commit order and the address rules (one default, at most N) hold under
# concurrency. What the change needs is read by a second statement: under READ COMMITTED its snapshot is
# taken after the lock was granted, so it sees everything the previous holder committed.
NAME_AND_PHONE = "SELECT full_name, phone FROM profiles WHERE id = $1"
PREFERENCES = "SELECT preferences::text AS preferences FROM profiles WHERE id = $1"
LOCK_PROFILE = "SELECT true FROM profiles WHERE id = $1 FOR NO KEY UPDATE"
LOCKED_PROFILE = f"""
SELECT {_PROFILE_COLUMNS}, (SELECT count(*) FROM addresses WHERE user_id = p.id) AS address_count
FROM profiles p LEFT JOIN avatars a ON a.user_id = p.id
WHERE p.id = $1
"""
CREATE_PROFILE = """
INSERT INTO profiles (id, email, full_name, preferences) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (id) DO NOTHING
"""
_RETURNING_PROFILE = f" RETURNING *) SELECT {_PROFILE_COLUMNS} FROM p LEFT JOIN avatars a ON a.user_id = p.id"
UPDATE_PERSONAL = (
    "WITH p AS (UPDATE profiles SET full_name = $2, phone = $3, date_of_birth = $4, updated_at = now()"
    " WHERE id = $1" + _RETURNING_PROFILE
)
UPDATE_PREFERENCES = "UPDATE profiles SET preferences = $2::jsonb, updated_at = now() WHERE id = $1"

# Admin listing: one statement per sort, so each keeps its own plan; `search` is a LIKE pattern matched,
# folded like it (lower case, no accents), against the trigram-indexed `search_text`.
SORTS = {"createdAt": "p.created_at", "fullName": "p.full_name", "email": "p.email"}
ORDERS = ("ASC", "DESC")


def _listings(where: str) -> dict[tuple[str, str], str]:
    return {
        (sort, order): f"{_PROFILE}{where} ORDER BY {column} {order}, p.id {order} LIMIT $1 OFFSET $2"
        for sort, column in SORTS.items()
        for order in ORDERS
    }


LIST_PROFILES = _listings("")
SEARCH_PROFILES = _listings(" WHERE p.search_text LIKE search_fold($3)")
COUNT_PROFILES = "SELECT count(*) FROM profiles"
COUNT_SEARCH = "SELECT count(*) FROM profiles WHERE search_text LIKE search_fold($1)"

_ADDRESS_COLUMNS = (
    "id, full_name, phone, line1, line2, city, district, country, postal_code, is_default,"
    " created_at, updated_at"
)
ADDRESSES = (
    f"SELECT {_ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 ORDER BY is_default DESC, created_at DESC"
)
ADDRESS = f"SELECT {_ADDRESS_COLUMNS} FROM addresses WHERE id = $1 AND user_id = $2"
INSERT_ADDRESS = f"""
INSERT INTO addresses (id, user_id, full_name, phone, line1, line2, city, district, country, postal_code,
                       is_default)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING {_ADDRESS_COLUMNS}
"""
UPDATE_ADDRESS = f"""
UPDATE addresses SET full_name = $3, phone = $4, line1 = $5, line2 = $6, city = $7, district = $8,
                     country = $9, postal_code = $10, is_default = $11, updated_at = now()
WHERE id = $1 AND user_id = $2
RETURNING {_ADDRESS_COLUMNS}
"""
CLEAR_DEFAULT = (
    "UPDATE addresses SET is_default = false, updated_at = now() WHERE user_id = $1 AND is_default"
)
DELETE_ADDRESS = "DELETE FROM addresses WHERE id = $1 AND user_id = $2 RETURNING is_default"
PROMOTE_NEWEST = """
UPDATE addresses SET is_default = true, updated_at = now()
WHERE id = (SELECT id FROM addresses WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT 1)
"""

# The CTE is named `a` like the avatar join elsewhere: the statement cannot see its own insert through
# a join on `avatars`, so the new version comes from the CTE itself.
PUT_AVATAR = f"""
WITH a AS (
    INSERT INTO avatars (user_id, content_type, etag, data) VALUES ($1, $2, $3, $4)
    ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, etag = excluded.etag,
                                        data = excluded.data, updated_at = now()
    RETURNING etag
), p AS (UPDATE profiles SET updated_at = now() WHERE id = $1 RETURNING *)
SELECT {_PROFILE_COLUMNS} FROM p, a
"""
DELETE_AVATAR = """
WITH gone AS (DELETE FROM avatars WHERE user_id = $1 RETURNING user_id)
UPDATE profiles SET updated_at = now() WHERE id = (SELECT user_id FROM gone) RETURNING id
"""
# The bytes only when the caller's cached copy (If-None-Match) is not the current one.
AVATAR = """
SELECT content_type, etag,
       CASE WHEN etag = ANY($2::text[]) OR '*' = ANY($2::text[]) THEN NULL ELSE data END AS data
FROM avatars WHERE user_id = $1
"""


async def create_profile(
    conn: asyncpg.Connection, user_id: uuid.UUID, email: str, full_name: str, preferences: bytes
) -> bool:
    """Create the profile of a verified account; False when it exists already (a repeated event)."""
    status: str = await conn.execute(CREATE_PROFILE, user_id, email.lower(), full_name, preferences.decode())
    return status == "INSERT 0 1"


async def search_profiles(
    conn: asyncpg.Connection, pattern: str | None, sort: str, order: str, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """One page of profiles (those whose name, email or phone match `pattern` when given) and the total."""
    if pattern is None:
        rows = await conn.fetch(LIST_PROFILES[sort, order], limit, offset)
        return rows, await conn.fetchval(COUNT_PROFILES)
    rows = await conn.fetch(SEARCH_PROFILES[sort, order], limit, offset, pattern)
    return rows, await conn.fetchval(COUNT_SEARCH, pattern)
