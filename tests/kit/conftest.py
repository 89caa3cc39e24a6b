from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from kit import db
from tests.conftest import NAMESPACE, POSTGRES_URL

KIT_DB = f"{POSTGRES_URL}/kit_{NAMESPACE}"


@pytest.fixture(scope="package")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    """A migrated database of kit's own tables (outbox, inbox), fresh for each run."""
    await db.drop_database(KIT_DB)
    await db.ensure_database(KIT_DB)
    pool = await db.create_pool(KIT_DB)
    await db.migrate(pool)
    yield pool
    await pool.close()
