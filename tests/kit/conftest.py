from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kit import db
from kit.cache import Client, connect
from tests.conftest import NAMESPACE, POSTGRES_URL
from tests.support import patient_redis

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


@pytest.fixture
async def redis() -> AsyncIterator[Client]:
    """The process's client (kit.cache.connect), in no hurry: the tests using it are about caching, not
    about a slow Redis (those about a slow or missing Redis make clients of their own)."""
    client = connect(patient_redis(os.environ["REDIS_URL"]))
    yield client
    await client.aclose()
