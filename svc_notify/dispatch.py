"""The dispatcher: one worker per channel drains the delivery queue (svc_notify.queue) through its sender.

Each worker keeps at most its channel's `concurrency` sends in flight and starts at most `rate` per
second (a token bucket), so a burst of events waits in the table instead of flooding a provider; both
limits are per process. It wakes on the NOTIFY the handlers' inserts send at commit, and polls once a
second for retries coming due. A failed attempt is retried after `retry_seconds * 2^(attempt-1)`, capped,
with jitter (a uniform draw between half and all of that, so the retries of one burst spread out), or
after the provider's Retry-After when that is longer; after `max_attempts` it is FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

import asyncpg
from prometheus_client import Counter

from kit.lifecycle import raise_if_cancelled
from svc_notify import queue
from svc_notify.channels import Retry, Sender, Undeliverable
from svc_notify.config import ChannelPolicy
from svc_notify.queue import Claimed

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
RELEASE_SECONDS = 2.0

attempts_total = Counter("shop_notify_attempts_total", "Delivery attempts by outcome", ["channel", "outcome"])


def backoff(policy: ChannelPolicy, attempt: int, provider_after: float | None = None) -> float:
    """Seconds before the attempt after `attempt` (1-based): exponential, capped, jittered."""
    ceiling = min(policy.retry_cap_seconds, policy.retry_seconds * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, provider_after or 0.0)


class TokenBucket:
    """At most `rate` starts per second on average, bursts of up to `rate` (at least one)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class ChannelWorker:
    def __init__(self, pool: asyncpg.Pool, sender: Sender, policy: ChannelPolicy) -> None:
        self.pool = pool
        self.sender = sender
        self.policy = policy
        self.wake = asyncio.Event()
        self._bucket = TokenBucket(policy.rate_per_second)
        # Each send in flight and the row it holds.
        self._in_flight: dict[asyncio.Task[None], Claimed] = {}

    async def run(self) -> None:
        try:
            while True:
                room = self.policy.concurrency - len(self._in_flight)
                self.wake.clear()
                try:
                    rows = await queue.claim(self.pool, self.sender.channel, room) if room > 0 else []
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                    raise_if_cancelled()
                    log.warning("notification queue unreachable", extra={"error": repr(exc)})
                    rows = []
                for row in rows:
                    task = asyncio.create_task(self._attempt(row))
                    self._in_flight[task] = row
                    task.add_done_callback(self._done)
                if rows and len(rows) == room:
                    continue  # a full batch: more may be due, as soon as there is room
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self.wake.wait()
        finally:
            held = list(self._in_flight.values())
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            await self._give_back(held)

    async def _give_back(self, held: list[Claimed]) -> None:
        """At shutdown, hand the rows of the sends cut short back to the queue at once, rather than when
        their claims run out; one may have reached the provider already (at least once)."""
        if not held:
            return
        try:
            async with asyncio.timeout(RELEASE_SECONDS):
                await queue.release(self.pool, held)
        except Exception as exc:
            log.warning("claims left to run out", extra={"error": repr(exc), "rows": len(held)})

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The outcome could not be recorded (the database is away): the claim runs out, and the
            # row is attempted again.
            log.warning("notification outcome not recorded", extra={"error": repr(exc)})
        self.wake.set()  # room for another

    async def _attempt(self, row: Claimed) -> None:
        channel = self.sender.channel
        try:
            await self._bucket.take()
            provider_id = await self.sender.send(row)
        except asyncio.CancelledError:
            raise  # shutting down: the claim runs out and another worker takes the row
        except Undeliverable as exc:
            attempts_total.labels(channel, exc.status.lower()).inc()
            log.warning("notification undeliverable", extra={"id": str(row.id), "error": str(exc)})
            await queue.give_up(self.pool, row, exc.status, str(exc))
        except Exception as exc:
            error = str(exc) if isinstance(exc, Retry) else repr(exc)
            if row.attempts >= self.policy.max_attempts:
                attempts_total.labels(channel, "failed").inc()
                log.warning("notification failed for good", extra={"id": str(row.id), "error": error})
                await queue.give_up(self.pool, row, "FAILED", error)
                return
            attempts_total.labels(channel, "retried").inc()
            after = exc.after if isinstance(exc, Retry) else None
            await queue.retry(self.pool, row, error, backoff(self.policy, row.attempts, after))
        else:
            attempts_total.labels(channel, "sent").inc()
            await queue.sent(self.pool, row, provider_id)


async def _listen_until_lost(url: str, wake: Callable[..., None]) -> None:
    lost = asyncio.Event()
    listener = await asyncpg.connect(url, timeout=5)
    try:
        listener.add_termination_listener(lambda _: lost.set())
        await listener.add_listener(queue.WAKE_CHANNEL, wake)
        await lost.wait()
    finally:
        listener.terminate()  # at once, even when the server no longer answers


async def _listen(url: str, workers: Sequence[ChannelWorker]) -> None:
    """Wake the workers on every NOTIFY of the handlers' inserts, on a connection of its own to `url`,
    straight to the server (LISTEN needs a session, which a transaction pooler does not keep); a lost
    connection is replaced (the workers poll meanwhile)."""

    def wake_all(*_: object) -> None:
        for worker in workers:
            worker.wake.set()

    while True:
        try:
            await _listen_until_lost(url, wake_all)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise_if_cancelled()
            log.warning("notification listener lost, retrying", extra={"error": repr(exc)})
        await asyncio.sleep(POLL_SECONDS)


async def dispatch(workers: Sequence[ChannelWorker], listen_url: str) -> None:
    """Run the channel workers, woken by the handlers' NOTIFY (heard on `listen_url`), until cancelled;
    then close the senders."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_listen(listen_url, workers), name="notify-listener")
            for worker in workers:
                group.create_task(worker.run(), name=f"notify-{worker.sender.channel}")
    finally:
        for worker in workers:
            await worker.sender.close()
