"""PostgreSQL through asyncpg: the database created if missing, one pool per process, migrations.

Statements are prepared and cached per connection by asyncpg itself (`statement_cache_size`), so the
services keep their SQL as module constants and pass them straight to `fetch`/`execute`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kit.settings import Settings

log = logging.getLogger(__name__)

KIT_MIGRATIONS = Path(__file__).parent / "migrations"


def _split(url: str) -> tuple[str, str]:
    """(URL of the maintenance database `postgres`, name of the database in `url`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


async def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist (contract section 1)."""
    admin_url, name = _split(url)
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
            log.info("created database", extra={"database": name})
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            pass  # another replica created it between our check and our CREATE
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database named in `url` (tests only), closing its other sessions first."""
    admin_url, name = _split(url)
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_pool(
    url: str,
    min_size: int = 2,
    max_size: int = 16,
    idle_seconds: float = 30.0,
    statement_cache_size: int = 100,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        # No session state is left behind by our code (listeners and advisory locks live on connections
        # of their own), so the reset query asyncpg runs on every release is pure cost: ~9% of a cart read.
        reset=_no_reset,
        min_size=min_size,
        max_size=max_size,
        timeout=5,
        command_timeout=10,
        # A burst's extra connections go back to the server soon after: the server is shared.
        max_inactive_connection_lifetime=idle_seconds,
        statement_cache_size=statement_cache_size,
    )
    assert pool is not None
    return pool


async def pool_for(
    config: Settings, *, direct: bool = False, min_size: int | None = None, max_size: int | None = None
) -> asyncpg.Pool:
    """A pool on the service's database as `config` says (the sizes may be narrowed); `direct` for
    work that holds a session across statements, which a transaction pooler would not keep."""
    url = config.database_direct_url if direct else config.database_url
    assert url is not None, f"{config.service} has no database"
    return await create_pool(
        url,
        config.db_pool_min if min_size is None else min_size,
        config.db_pool_max if max_size is None else max_size,
        config.db_pool_idle_seconds,
        # Named statements live on a server connection: only cached where the pool owns one.
        config.db_statement_cache_size if not direct else 100,
    )


async def close(pool: asyncpg.Pool, within: float = 5.0) -> None:
    """Close `pool` once its connections are back, or cut them after `within` seconds: asyncpg's own
    close waits for every connection to be released, so one held by work that never ends (or a server
    that stopped answering) would hold the process's stop for good."""
    try:
        await asyncio.wait_for(pool.close(), within)  # cancelled, asyncpg terminates the pool itself
    except TimeoutError:
        log.warning("pool cut with connections still in use", extra={"seconds": within})


def migration_files(*folders: Path) -> list[tuple[str, Path]]:
    """(version, file) in the order they apply: kit's own first, then each folder's numbered files."""
    found: list[tuple[str, Path]] = []
    for folder in (KIT_MIGRATIONS, *folders):
        prefix = "kit/" if folder == KIT_MIGRATIONS else ""
        files = sorted(folder.glob("[0-9][0-9][0-9]_*.sql"))
        # Two branches that each added "the next" migration: their order would depend on their names.
        numbers = [f.name[:3] for f in files]
        if twice := sorted({n for n in numbers if numbers.count(n) > 1}):
            raise ValueError(f"{folder}: more than one migration numbered {', '.join(twice)}")
        found += [(prefix + f.stem, f) for f in files]
    return found


async def migrate(pool: asyncpg.Pool, *folders: Path) -> list[str]:
    """`migrate_on` a connection of `pool` (one straight to the server: a session lock is taken)."""
    async with pool.acquire() as conn:
        return await migrate_on(conn, *folders)


async def migrate_at(url: str, *folders: Path) -> list[str]:
    """`migrate_on` a connection of its own to `url`, closed afterwards."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await migrate_on(conn, *folders)
    finally:
        await conn.close()


async def migrate_on(conn: asyncpg.Connection, *folders: Path) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; return their versions.

    A session-level advisory lock serialises replicas that start together: the second waits, then
    finds everything applied. It needs a session, so never a connection through a transaction pooler.
    """
    applied: list[str] = []
    lock_key = zlib.crc32(b"shop.schema_migrations")
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migration_files(*folders):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("applied migration", extra={"version": version})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied
