"""Whether any automatic discount exists, kept in Redis for svc_order's checkout.

A checkout without a code asks ApplyDiscount for the best automatic discount; when there is none at all
that round trip (and its work here) buys nothing. So svc_order skips it only when this key says `0`
(no active automatic discount); `1`, or no key (unknown), and it asks as before. No rule that could
apply is ever skipped:

- every write that could change the answer runs inside `changing`: it takes one PostgreSQL advisory
  lock (writers one at a time, so the key's last word always comes from after the last write), deletes
  the key before writing (if anything fails from there, the key stays absent, never stale; if Redis
  cannot be told, the write is refused as a 503) and sets it from the database afterwards, still under
  the lock. A write's answer goes out after that, so a checkout that starts once an admin sees the new
  automatic discount also sees `1`;
- a job sets it again every `REFRESH` seconds with a TTL of a few times that: a Redis that was flushed
  or restarted, or a row written from outside this service, is picked up within seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from redis.asyncio import Redis

from kit import cache
from kit.app import Deps, Resource
from kit.lifecycle import every

log = logging.getLogger(__name__)

# svc_order reads it (svc_order/downstream.py names it too: services share no code).
KEY = "discount:automatic"
REFRESH = 5.0
TTL = 30
# Any fixed number: the lock only svc_discount's writers of automatic discounts take.
_LOCK = 0x5D15C0
_EXISTS = "SELECT EXISTS (SELECT 1 FROM discounts WHERE auto_apply AND active)"


@contextlib.asynccontextmanager
async def _published(d: Deps) -> AsyncIterator[Redis]:
    """A Redis client of its own, not the process's, so that svc_discount stays ready (kit.readiness,
    its gRPC health) while Redis is down: only discount writes need Redis."""
    redis = cache.connect(d.settings.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


PUBLISHED = Resource("published", _published)


@contextlib.asynccontextmanager
async def _locked(d: Deps) -> AsyncIterator[asyncpg.Connection]:
    async with d.db.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        try:
            yield conn
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
            except BaseException:
                conn.terminate()  # its session ends, and the lock with it: never back to the pool held
                raise


async def _publish(d: Deps, conn: asyncpg.Connection) -> None:
    exists = await conn.fetchval(_EXISTS)
    await PUBLISHED.of(d).set(KEY, b"1" if exists else b"0", ex=TTL)


@contextlib.asynccontextmanager
async def changing(d: Deps) -> AsyncIterator[asyncpg.Connection]:
    """A connection for a write that may change which automatic discounts exist (see the module)."""
    async with _locked(d) as conn:
        await PUBLISHED.of(d).delete(KEY)
        try:
            yield conn
        finally:
            try:
                await _publish(d, conn)
            except Exception as exc:  # the key stays absent: svc_order asks until the job sets it
                log.warning("could not publish whether automatic discounts exist", extra={"error": repr(exc)})


async def keep_published(d: Deps) -> None:
    """`Service.jobs` entry: the key set again every `REFRESH` seconds."""

    async def publish() -> None:
        async with _locked(d) as conn:
            await _publish(d, conn)

    await every(REFRESH, publish, name="automatic-discounts")
