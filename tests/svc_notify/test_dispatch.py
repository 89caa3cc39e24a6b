"""The dispatcher against a queue of its own: per-channel concurrency, rows left by a dead worker, a
worker whose claim was taken over never overwriting the newer attempt, and its wake-up behind PgBouncer."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kit import db
from svc_notify import dispatch, queue
from svc_notify.config import ChannelPolicy
from svc_notify.dispatch import ChannelWorker
from svc_notify.preferences import KINDS, Channel
from svc_notify.queue import Claimed
from tests.conftest import NAMESPACE, PORT_OFFSET, POSTGRES_URL
from tests.servers import own_pgbouncer
from tests.support import eventually

DISPATCH_DB_NAME = f"notify_dispatch_{NAMESPACE}"
DISPATCH_DB = f"{POSTGRES_URL}/{DISPATCH_DB_NAME}"
MIGRATIONS = Path(__file__).resolve().parents[2] / "svc_notify" / "migrations"
POLICY = ChannelPolicy(
    concurrency=3, rate_per_second=1000, max_attempts=3, retry_seconds=0.05, retry_cap_seconds=1
)


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    await db.drop_database(DISPATCH_DB)
    await db.ensure_database(DISPATCH_DB)
    pool = await db.create_pool(DISPATCH_DB)
    await db.migrate(pool, MIGRATIONS)
    yield pool
    await pool.close()


class SlowProvider:
    """A sender that takes a while per message and remembers how many it had in flight at most."""

    channel: Channel = "push"

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.sent: list[uuid.UUID] = []

    async def send(self, row: Claimed) -> str | None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        self.sent.append(row.id)
        return f"id-{row.id}"

    async def close(self) -> None:
        """Nothing held."""


async def _queue(
    pool: asyncpg.Pool,
    count: int,
    status: str = "QUEUED",
    attempts: int = 0,
    channel: str = "push",
    kind: str = "orderUpdates",
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    await pool.executemany(
        """
        INSERT INTO notifications (id, event_id, user_id, channel, recipient, template, body, status,
                                   attempts, priority, next_attempt_at)
        VALUES ($1, $2, $3, $7, $4, 'order-confirmed', 'b', $5, $6, $8, now() - interval '1 second')
        """,
        [
            (
                i,
                uuid.uuid4(),
                uuid.uuid4(),
                str(uuid.uuid4()),
                status,
                attempts,
                channel,
                queue.PRIORITY[kind],
            )
            for i in ids
        ],
    )
    return ids


def test_every_kind_of_message_has_a_priority() -> None:
    # A kind added to the preferences without one would fail every message of it at enqueue.
    assert set(queue.PRIORITY) == set(KINDS)


async def test_a_verification_mail_goes_out_before_a_backlog_of_order_mails(pool: asyncpg.Pool) -> None:
    # Someone waits on a screen for it; the order mails queued before it can wait for the provider's rate.
    backlog = await _queue(pool, 20, channel="email")
    [verification] = await _queue(pool, 1, channel="email", kind="security")
    [first] = await queue.claim(pool, "email", 1)
    assert first.id == verification
    assert {row.id for row in await queue.claim(pool, "email", 100)} == set(backlog)


@contextlib.asynccontextmanager
async def working(pool: asyncpg.Pool, provider: SlowProvider) -> AsyncIterator[None]:
    """A push worker on `provider`, stopped (as at shutdown) when the block ends."""
    task = asyncio.create_task(ChannelWorker(pool, provider, POLICY).run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _drained(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    async def sent() -> list[asyncpg.Record] | None:
        rows = await pool.fetch("SELECT * FROM notifications WHERE id = ANY($1::uuid[])", ids)
        return rows if all(row["status"] == "SENT" for row in rows) else None

    return await eventually(sent)


async def test_a_burst_is_sent_with_no_more_than_the_channels_concurrency(pool: asyncpg.Pool) -> None:
    ids = await _queue(pool, 30)
    provider = SlowProvider()
    async with working(pool, provider):
        rows = await _drained(pool, ids)
    assert sorted(provider.sent) == sorted(ids) and provider.peak == POLICY.concurrency
    assert {(row["attempts"], row["provider_id"]) for row in rows} == {(1, f"id-{row['id']}") for row in rows}


async def test_a_row_left_sending_by_a_dead_worker_is_sent_once_its_claim_runs_out(
    pool: asyncpg.Pool,
) -> None:
    ids = await _queue(pool, 1, status="SENDING", attempts=1)
    async with working(pool, SlowProvider()):
        [row] = await _drained(pool, ids)
    assert row["attempts"] == 2


async def test_a_worker_whose_claim_was_taken_over_cannot_record_its_outcome(pool: asyncpg.Pool) -> None:
    [notification_id] = await _queue(pool, 1)
    [stale] = [c for c in await queue.claim(pool, "push", 100) if c.id == notification_id]
    # Its claim ran out and another worker claimed the row: one more attempt.
    await pool.execute("UPDATE notifications SET attempts = attempts + 1 WHERE id = $1", notification_id)
    await queue.give_up(pool, stale, "FAILED", "late")
    await queue.retry(pool, stale, "late", 1.0)
    await queue.sent(pool, stale, "late-id")
    row = await pool.fetchrow("SELECT * FROM notifications WHERE id = $1", notification_id)
    assert (row["status"], row["attempts"], row["provider_id"], row["last_error"]) == (
        "SENDING",
        2,
        None,
        None,
    )


class StuckProvider(SlowProvider):
    """A provider that never answers."""

    async def send(self, row: Claimed) -> str | None:
        self.in_flight += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_worker_stopping_mid_send_hands_its_rows_back_at_once(pool: asyncpg.Pool) -> None:
    ids = await _queue(pool, POLICY.concurrency)
    provider = StuckProvider()
    async with working(pool, provider):

        async def all_sending() -> bool:
            return provider.in_flight == POLICY.concurrency

        await eventually(all_sending)
    rows = await pool.fetch(
        "SELECT status, attempts, next_attempt_at <= now() AS due"
        " FROM notifications WHERE id = ANY($1::uuid[])",
        ids,
    )
    assert {(row["status"], row["attempts"], row["due"]) for row in rows} == {("QUEUED", 1, True)}


@pytest.mark.skipif(
    shutil.which("pgbouncer") is None, reason="PgBouncer is not installed (.ci/run installs it)"
)
async def test_a_queued_row_wakes_the_dispatcher_at_once_when_its_pool_goes_through_pgbouncer(
    pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unwoken, the worker would look at the queue again only a minute after its first look.
    monkeypatch.setattr(dispatch, "POLL_SECONDS", 60.0)
    looks: list[int] = []
    claim = queue.claim

    async def counted(*args: Any) -> list[Claimed]:
        rows = await claim(*args)
        looks.append(len(rows))
        return rows

    monkeypatch.setattr(queue, "claim", counted)
    tmp_path.chmod(0o755)  # noqa: ASYNC240 (PgBouncer runs as postgres when started by root)
    async with own_pgbouncer(POSTGRES_URL, 6437 + PORT_OFFSET, tmp_path) as bouncer:
        pooled = await db.create_pool(f"{bouncer.url}/{DISPATCH_DB_NAME}", statement_cache_size=0)
        task = asyncio.create_task(
            dispatch.dispatch([ChannelWorker(pooled, SlowProvider(), POLICY)], DISPATCH_DB)
        )
        try:

            async def waiting_and_listening() -> bool:
                listeners = await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'",
                    DISPATCH_DB_NAME,
                )
                return bool(looks) and listeners == 1

            await eventually(waiting_and_listening)
            ids = await _queue(pool, 1)
            await pool.execute("SELECT pg_notify($1, '')", queue.WAKE_CHANNEL)
            await _drained(pool, ids)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pooled.close()
