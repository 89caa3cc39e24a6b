"""Events on RabbitMQ: the outbox written with the state change, its relay, and idempotent consumers.

- `publish(conn, event)` inserts the event into the outbox inside the caller's transaction and wakes the
  relay with NOTIFY (delivered only on commit), so a rolled-back change never publishes.
- `kit.relay.OutboxRelay` publishes unsent rows with publisher confirms and marks them sent in the same
  transaction that locked them; if RabbitMQ is down the rows simply wait.
- `Consumer` runs one durable queue per routing key (`<service>.<routing key>`), acks manually, records
  each processed `eventId` in the inbox in the handler's own transaction, retries a failed message after
  1 s, 2 s and 4 s through TTL delay queues and then parks it in `<queue>.dlq`. A handler may return
  work to run once its transaction has committed (`AfterCommit`), e.g. dropping cached pages, which
  done before the commit could be refilled from the old rows by a reader in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, get_type_hints

import aiormq
import asyncpg
import msgspec
from aiormq.abc import DeliveredMessage
from asyncpg.pgproto.pgproto import UUID as NativeUUID
from opentelemetry.trace import SpanKind
from pamqp import commands as spec
from prometheus_client import Counter

from kit import telemetry, tracing
from kit.amqp_frames import ERROR_LENGTH
from kit.lifecycle import raise_if_cancelled
from shop.map import EXCHANGES

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 4.0)

consumed = Counter("shop_events_consumed_total", "Events handled by outcome", ["queue", "outcome"])


def _now() -> datetime:
    return datetime.now(UTC)


def event_ids(count: int) -> list[uuid.UUID]:
    """`count` random (version 4) event ids from one read of the OS's randomness, for a batch's events:
    `uuid.uuid4()` costs ~2.5 µs each here (a system call and a pure-Python UUID), this ~0.6 µs.
    They are asyncpg's UUIDs (a `uuid.UUID` in C), which asyncpg and msgspec also encode faster."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])
    return [NativeUUID(bytes(raw[i : i + 16])) for i in range(0, len(raw), 16)]


def _traceparent() -> str:
    # With tracing on, the relay's publication is the child span (kit.telemetry); its parent is this.
    return telemetry.handed_on(tracing.traceparent.get())


class Event(msgspec.Struct, rename="camel", kw_only=True):
    """Base of every event. Subclasses set `routing_key`; consumers declare only the fields they read."""

    routing_key: ClassVar[str]
    event_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: datetime = msgspec.field(default_factory=_now)
    traceparent: str = msgspec.field(default_factory=_traceparent)


_encoder = msgspec.json.Encoder()


# The relay listens here (kit.relay); a statement writing outbox rows joins RELAY_WOKEN, a one-row FROM
# item, so that the relay wakes at its commit.
OUTBOX_CHANNEL = "kit_outbox"
RELAY_WOKEN = f"(SELECT pg_notify('{OUTBOX_CHANNEL}', '')) AS relay_woken"


def outbox_insert(first: int, keep: str = "") -> str:
    """The INSERT of `publish`, its five arrays (`outbox_arrays`) at parameters $first to $first+4: a
    statement that writes a change can announce it in the same round trip, as a data-modifying CTE (its
    main query then selects FROM `RELAY_WOKEN` too, as `publish` does).

    `keep`: a condition on `e.tag`, a sixth array of a uuid per event at $first+5 (the order it
    announces, say), that only the events to write meet, when the statement itself decides which."""
    ids, exchanges, keys, payloads, parents, tags = range(first, first + 6)
    arrays = (
        f"${ids}::uuid[], ${exchanges}::text[], ${keys}::text[], ${payloads}::bytea[], ${parents}::text[]"
    )
    insert = "INSERT INTO outbox (event_id, exchange, routing_key, payload, traceparent) "
    if not keep:
        return f"{insert}SELECT * FROM unnest({arrays})"
    return (
        f"{insert}SELECT e.id, e.exchange, e.key, e.payload, e.parent"
        f" FROM unnest({arrays}, ${tags}::uuid[]) AS e(id, exchange, key, payload, parent, tag) WHERE {keep}"
    )


def outbox_arrays(events: Sequence[Event]) -> tuple[list[Any], ...]:
    """The parameters of `outbox_insert` for `events`."""
    return (
        [e.event_id for e in events],
        [EXCHANGES[e.routing_key] for e in events],
        [e.routing_key for e in events],
        [_encoder.encode(e) for e in events],
        [e.traceparent for e in events],
    )


_INSERT_OUTBOX = f"WITH row AS ({outbox_insert(1)}) SELECT FROM {RELAY_WOKEN}"


async def publish(conn: asyncpg.Connection, *events: Event) -> None:
    """Add `events` to the outbox in one statement, inside the transaction of the change they announce."""
    if events:
        await conn.execute(_INSERT_OUTBOX, *outbox_arrays(events))


class Broker:
    """One AMQP connection per process, re-established in the background whenever it drops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._up = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def connection(self) -> aiormq.abc.AbstractConnection:
        """The live connection, waiting for one if the broker is down."""
        while True:
            await self._up.wait()
            if self._connection is not None and not self._connection.is_closed:
                return self._connection
            self._up.clear()

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                connection = await aiormq.connect(self.url)
                await self.declare_exchanges(connection)
            except Exception as exc:
                raise_if_cancelled()
                log.warning("broker unreachable, retrying", extra={"error": repr(exc), "retryIn": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            self._connection = connection
            self._up.set()
            log.info("broker connected")
            with contextlib.suppress(Exception):
                await connection.closing
            self._up.clear()
            self._connection = None
            log.warning("broker connection lost")

    @staticmethod
    async def declare_exchanges(connection: aiormq.abc.AbstractConnection) -> None:
        channel = await connection.channel()
        for exchange in sorted(set(EXCHANGES.values())):
            await channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        await channel.close()

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()


def properties(
    event_id: uuid.UUID | str, traceparent: str | None, attempt: int = 0, error: str | None = None
) -> spec.Basic.Properties:
    headers: dict[str, Any] = {"x-attempt": attempt}
    if traceparent:
        headers["traceparent"] = traceparent
    if error:
        headers["x-error"] = error[:ERROR_LENGTH]  # why the last attempt failed, for `python -m kit.dlq show`
    return spec.Basic.Properties(
        content_type="application/json",
        delivery_mode=2,
        message_id=str(event_id),
        timestamp=_now(),
        headers=headers,
    )


# What a handler may leave to run after its transaction commits.
AfterCommit = Callable[[], Awaitable[None]]
# `async def on_x(conn, event)`, or `async def on_x(conn, event, context)` for a handler that needs the
# service's Deps (settings, pool, clients) beside the connection of its transaction; either returns None
# or the `AfterCommit` work.
Handler = Callable[..., Awaitable[AfterCommit | None]]


class PoisonMessage(Exception):
    """A message that can never succeed (not JSON, not the event's shape): parked without retries."""


class Queues:
    """The queues of one consumer of one routing key: its queue, the delay queues of its retries, its DLQ."""

    def __init__(self, service: str, routing_key: str, delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.routing_key = routing_key
        self.delays = delays
        self.exchange = EXCHANGES[routing_key]
        self.queue = f"{service}.{routing_key}"

    def retry_queue(self, attempt: int) -> str:
        return f"{self.queue}.retry.{self.delays[attempt]:g}s"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dlq"

    async def declare(self, channel: aiormq.abc.AbstractChannel) -> None:
        await channel.queue_declare(self.queue, durable=True)
        await channel.queue_bind(self.queue, self.exchange, routing_key=self.routing_key)
        for attempt, delay in enumerate(self.delays):
            await channel.queue_declare(
                self.retry_queue(attempt),
                durable=True,
                arguments={
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                },
            )
        await channel.queue_declare(self.dead_letter_queue, durable=True)


async def declare_topology(url: str, consumers: Mapping[str, Iterable[str]]) -> None:
    """Declare the exchanges and every consumer queue ({service: routing keys}) before anything runs.

    A topic exchange drops a message no queue is bound for, so an event published before its consumer
    first started would be lost; `make run` declares everything first (through `shop.migrate`).
    """
    connection = await aiormq.connect(url)
    try:
        await Broker.declare_exchanges(connection)
        channel = await connection.channel()
        for service, keys in consumers.items():
            for key in keys:
                await Queues(service, key).declare(channel)
    finally:
        await connection.close()


def event_type(handler: Handler) -> type[Event]:
    """The Struct a handler's events are decoded into: the annotation of its second parameter."""
    kind: type[Event] = get_type_hints(handler)[list(inspect.signature(handler).parameters)[1]]
    return kind


class _Subscription:
    """A consumer's queues with its handler and the handler's event type."""

    def __init__(self, queues: Queues, handler: Handler) -> None:
        self.queues = queues
        self.handler = handler
        self.decoder = msgspec.json.Decoder(event_type(handler))
        # A third parameter receives the consumer's context (the service's Deps).
        self.wants_context = len(inspect.signature(handler).parameters) > 2


class Consumer:
    """Consumes the routing keys in `handlers` for `service`; see `Handler` for their signature."""

    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        broker: Broker,
        handlers: Mapping[str, Handler],
        prefetch: int = 8,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        context: object = None,
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.prefetch = prefetch
        self.context = context
        self.subscriptions = [
            _Subscription(Queues(service, key, retry_delays), fn) for key, fn in handlers.items()
        ]

    async def run(self) -> None:
        while True:
            try:
                connection = await self.broker.connection()
                channel = await connection.channel(publisher_confirms=True)
                await channel.basic_qos(prefetch_count=self.prefetch)
                for sub in self.subscriptions:
                    await sub.queues.declare(channel)
                    await channel.basic_consume(sub.queues.queue, self._callback(channel, sub))
                await channel.closing
            except Exception as exc:
                raise_if_cancelled()
                log.warning("consumer channel lost, resubscribing", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)

    def _callback(
        self, channel: aiormq.abc.AbstractChannel, sub: _Subscription
    ) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None]]:
        async def on_message(message: DeliveredMessage) -> None:
            await self._deliver(channel, sub, message)

        return on_message

    async def _deliver(
        self, channel: aiormq.abc.AbstractChannel, sub: _Subscription, message: DeliveredMessage
    ) -> None:
        headers = message.header.properties.headers or {}
        raw_attempt = headers.get("x-attempt", 0)
        attempt = raw_attempt if isinstance(raw_attempt, int) else 0
        traceparent = headers.get("traceparent")
        try:
            try:
                event = sub.decoder.decode(message.body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise PoisonMessage(str(exc)) from exc
            # The publication's span (the header) is the parent; without it, the event's own context.
            parent = traceparent if isinstance(traceparent, str) else getattr(event, "traceparent", "")
            span = telemetry.server_span(f"{sub.queues.queue} process", parent or "", SpanKind.CONSUMER)
            try:
                await self.handle(sub, event, traced=span is not None)
            except Exception as exc:
                telemetry.finish(span, error=exc)
                raise
            telemetry.finish(span)
            consumed.labels(sub.queues.queue, "ok").inc()
        except Exception as exc:
            poison = isinstance(exc, PoisonMessage)
            queues = sub.queues
            retry = not poison and attempt < len(queues.delays)
            target = queues.retry_queue(attempt) if retry else queues.dead_letter_queue
            log.warning(
                "event handler failed",
                extra={"queue": queues.queue, "attempt": attempt, "movedTo": target, "error": repr(exc)},
            )
            await channel.basic_publish(
                message.body,
                exchange="",
                routing_key=target,
                properties=properties(
                    message.header.properties.message_id or "",
                    traceparent if isinstance(traceparent, str) else None,
                    attempt + 1,
                    repr(exc),
                ),
            )
            consumed.labels(queues.queue, "retried" if retry else "dead-lettered").inc()
        assert message.delivery_tag is not None  # set on every consumed (not basic_get) message
        await channel.basic_ack(message.delivery_tag)

    async def handle(self, sub: _Subscription, event: Any, traced: bool = False) -> bool:
        """Run the handler once per event id and queue; False when the event was already processed.
        `traced`: a span (kit.telemetry) already set the trace context."""
        if not traced:
            tracing.traceparent.set(getattr(event, "traceparent", "") or "")
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (event_id, queue) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
                event.event_id,
                sub.queues.queue,
            )
            if not fresh:
                return False
            if sub.wants_context:
                after_commit = await sub.handler(conn, event, self.context)
            else:
                after_commit = await sub.handler(conn, event)
        if after_commit is not None:
            # The event is done for good: a failure here is logged, not retried.
            try:
                await after_commit()
            except Exception:
                log.exception("after-commit work failed", extra={"queue": sub.queues.queue})
        return True
