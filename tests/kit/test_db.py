from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from kit import db
from tests.conftest import NAMESPACE, POSTGRES_URL


async def test_migrations_apply_once_even_when_run_twice_concurrently(tmp_path: Path) -> None:
    url = f"{POSTGRES_URL}/kit_migrate_{NAMESPACE}"
    await db.drop_database(url)
    (tmp_path / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    (tmp_path / "notes.sql").write_text("this is not a migration and must be ignored")
    await asyncio.gather(db.ensure_database(url), db.ensure_database(url))
    pool = await db.create_pool(url)
    try:
        first, second = await asyncio.gather(db.migrate(pool, tmp_path), db.migrate(pool, tmp_path))
        assert sorted(first + second) == ["001_things", "002_more", "kit/001_outbox_inbox"]
        assert await db.migrate(pool, tmp_path) == []
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO things (id, name) VALUES (1, 'kept')")
            versions = [
                r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
            ]
        assert versions == ["001_things", "002_more", "kit/001_outbox_inbox"]
    finally:
        await pool.close()
        await db.drop_database(url)


async def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    url = f"{POSTGRES_URL}/kit_broken_{NAMESPACE}"
    await db.drop_database(url)
    await db.ensure_database(url)
    (tmp_path / "001_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    pool = await db.create_pool(url)
    try:
        try:
            await db.migrate(pool, tmp_path)
        except asyncpg.UndefinedFunctionError:
            pass
        else:
            raise AssertionError("the broken migration should have failed")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('half')") is None
            assert (
                await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '001_broken'")
                == 0
            )
    finally:
        await pool.close()
        await db.drop_database(url)


def test_two_migrations_with_one_number_are_refused_before_any_applies(tmp_path: Path) -> None:
    (tmp_path / "001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "002_names.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    (tmp_path / "002_prices.sql").write_text("ALTER TABLE things ADD COLUMN price numeric;")
    with pytest.raises(ValueError, match="more than one migration numbered 002"):
        db.migration_files(tmp_path)


def test_every_service_numbers_its_migrations_once() -> None:
    for folder in sorted(Path(__file__).resolve().parents[2].glob("svc_*/migrations")):
        assert db.migration_files(folder), folder
