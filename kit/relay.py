"""The outbox relay: publishes the rows `kit.bus.publish` wrote, with publisher confirms. A batch is
claimed and marked sent by one statement (`FOR UPDATE SKIP LOCKED`, so several relays share the work and
none publishes a row twice) in a transaction that commits only once the broker has confirmed every row
of it; if RabbitMQ is down the rows simply wait."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any, cast

import aiormq
import asyncpg
from aiormq.abc import ChannelFrame
from opentelemetry.trace import SpanKind
from pamqp import commands as spec
from prometheus_client import Counter, Gauge

from kit import telemetry
from kit.amqp_frames import ChannelFrames
from kit.bus import OUTBOX_CHANNEL, Broker
from kit.lifecycle import raise_if_cancelled

log = logging.getLogger(__name__)
_LISTENER_LOST = "outbox listener connection lost; listening again on a new one"

relayed = Counter("shop_events_published_total", "Outbox rows published", ["routing_key"])
outbox_listening = Gauge(
    "shop_outbox_listening", "1 while the outbox relay hears commits at once (NOTIFY), 0 while it only polls"
)


# Marks the batch sent as it locks it: one statement where a SELECT ... FOR UPDATE and an UPDATE were two
# (perf/README.md, "Fewer round trips per order"). The marks hold only if the transaction commits: after the
# broker's confirmations; `sent_at` is the claim's time, a few milliseconds before them.
_CLAIM = """
WITH claimed AS (
    UPDATE outbox SET sent_at = now()
    WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, event_id, exchange, routing_key, payload, traceparent
)
SELECT event_id, exchange, routing_key, payload, traceparent FROM claimed ORDER BY id
"""


class OutboxRelay:
    """Publishes outbox rows with publisher confirms; wakes on NOTIFY and polls once a second.

    The NOTIFY listener is a connection of its own to `listen_url`, outside the pool and straight to
    the server (LISTEN needs a session, which a transaction pooler does not keep). When the server cuts
    it (a restart, a failover) nothing in the relay's own calls fails, so a termination callback
    notices instead: the loop listens again on a new connection at once, and says so in the log, in
    `listening` (the service's readiness) and in the `shop_outbox_listening` gauge. Without it every
    event would wait for the next poll, a hundred times slower, for good.
    """

    def __init__(self, pool: asyncpg.Pool, broker: Broker, listen_url: str, batch: int = 200) -> None:
        self.pool = pool
        self.broker = broker
        self.listen_url = listen_url
        self.batch = batch
        self.listening = False
        self._wake = asyncio.Event()
        self._last_cleanup = 0.0

    async def run(self) -> None:
        listener: asyncpg.Connection | None = None
        channel: aiormq.abc.AbstractChannel | None = None
        try:
            while True:
                try:
                    if listener is None or not self.listening:
                        await self._release(listener)
                        listener = None
                        listener = await self._listen()
                    if channel is None or channel.is_closed:
                        connection = await self.broker.connection()
                        channel = await connection.channel(publisher_confirms=True)
                    self._wake.clear()
                    if await self.flush(channel) >= self.batch:
                        continue
                    await self._cleanup()
                    # Not wait_for: on 3.11 it can swallow a cancellation that races the wake-up.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await self._wake.wait()
                except Exception as exc:
                    raise_if_cancelled()
                    log.warning("outbox relay failed, retrying", extra={"error": repr(exc)})
                    channel = None
                    await self._release(listener)
                    listener = None
                    await asyncio.sleep(1.0)
        finally:
            await self._release(listener)

    async def _listen(self) -> asyncpg.Connection:
        listener: asyncpg.Connection = await asyncpg.connect(self.listen_url, timeout=5)
        try:
            await listener.add_listener(OUTBOX_CHANNEL, self._on_notify)
        except BaseException:
            listener.terminate()
            raise
        listener.add_termination_listener(self._on_listener_lost)
        self._set_listening(True)
        return listener

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_listener_lost(self, *_: object) -> None:
        log.warning(_LISTENER_LOST)
        self._set_listening(False)
        self._wake.set()

    def _set_listening(self, up: bool) -> None:
        self.listening = up
        outbox_listening.set(1 if up else 0)

    async def _release(self, listener: asyncpg.Connection | None) -> None:
        if listener is not None:
            if self.listening and listener.is_closed():
                # The server cut it, and a failure in the loop got here before the termination callback.
                log.warning(_LISTENER_LOST)
            self._set_listening(False)
            listener.remove_termination_listener(self._on_listener_lost)
            listener.terminate()  # at once, even when the server no longer answers

    async def flush(self, channel: aiormq.abc.AbstractChannel) -> int:
        """Publish one batch of unsent rows; return how many went out."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self.batch)
            if not rows:
                return 0
            # With tracing on, each event's publication is a span of the request that wrote it.
            spans = [
                telemetry.client_span(
                    f"{row['routing_key']} publish", SpanKind.PRODUCER, row["traceparent"] or ""
                )
                for row in rows
            ]
            # Written on the channel's own delivery tags and confirmations (`_publish`): a Channel's.
            publisher = cast(aiormq.Channel, channel)
            framing = _framing(publisher.number, publisher.max_content_size)
            now = int(time.time())
            frames = [
                framing.publish(
                    row["exchange"],
                    row["routing_key"],
                    row["payload"],
                    str(row["event_id"]),
                    now,
                    telemetry.traceparent_of(span) if span else row["traceparent"],
                )
                for row, span in zip(rows, spans, strict=True)
            ]
            async with asyncio.timeout(10):
                confirms = await asyncio.gather(*await _publish(publisher, frames))
            for span in spans:
                telemetry.finish(span)
            if not all(isinstance(c, spec.Basic.Ack) for c in confirms):
                raise RuntimeError("broker refused to confirm a published event")
        for row in rows:
            relayed.labels(row["routing_key"]).inc()
        return len(rows)

    async def _cleanup(self) -> None:
        """Forget sent rows after a week; they are kept that long for inspection and replay."""
        if time.monotonic() - self._last_cleanup < 600:
            return
        self._last_cleanup = time.monotonic()
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM outbox WHERE sent_at < now() - interval '7 days'")
            await conn.execute("DELETE FROM inbox WHERE processed_at < now() - interval '30 days'")


# The frames the relay writes (kit.amqp_frames), kept while its channel's number and frame size last.
_framing = functools.lru_cache(maxsize=4)(ChannelFrames)


async def _publish(channel: aiormq.Channel, messages: list[bytes]) -> list[asyncio.Future[Any]]:
    """Send framed messages in one write; each one's publisher confirmation, to be awaited.

    `basic_publish` per message took a lock, a queue item, a flush and a timer for each (~3x the CPU of
    this, the relay's largest cost): here the channel's delivery tags and confirmations are taken as
    `basic_publish` takes them, for the whole batch at once, and given back if it never left.
    """
    async with channel.lock:
        first = channel.delivery_tag + 1
        confirmations = [channel.create_future() for _ in messages]
        for tag, confirmation in enumerate(confirmations, first):
            channel.confirmations[tag] = confirmation
        channel.delivery_tag += len(messages)
        try:
            await channel.write_queue.put(ChannelFrame(payload=b"".join(messages), should_close=False))
        except BaseException:
            # The broker never saw them: the next publish reuses their sequence numbers.
            channel.delivery_tag -= len(messages)
            for tag, confirmation in enumerate(confirmations, first):
                channel.confirmations.pop(tag, None)
                confirmation.cancel()
            raise
    return confirmations
