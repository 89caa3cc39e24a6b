"""Property tests of the relay's own AMQP frames (kit.amqp_frames) against pamqp, the library they stand
in for: for any exchange, routing key, body, event id, traceparent, attempt and error, the bytes are
those `pamqp.frame.marshal` gives for the frames `basic_publish` would send with `kit.bus.properties`,
and pamqp reads them back as that message."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from types import SimpleNamespace

import aiormq
import pamqp.frame
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from kit.amqp_frames import ERROR_LENGTH, ChannelFrames
from kit.bus import properties

pytestmark = pytest.mark.offline

PROPERTIES = settings(max_examples=400, deadline=None, database=None, print_blob=True)
FRAME_MAX = 131_072  # RabbitMQ's default; aiormq's max_content_size is 8 bytes less
REAL_SIZE = FRAME_MAX - 8

EXCHANGES = st.text(string.ascii_letters + string.digits + "-_.:@#,/+ ", max_size=127)
# A short string holds 255 bytes: any text of up to 63 characters, or up to 255 ASCII ones.
ROUTING_KEYS = st.text(max_size=63) | st.text(string.printable, max_size=255)
TRACEPARENTS = st.none() | st.just("") | st.text(max_size=80)
ERRORS = st.none() | st.just("") | st.text(max_size=40) | st.text(min_size=ERROR_LENGTH - 5, max_size=1200)
ATTEMPTS = st.integers(0, 5) | st.integers(-(2**63), 2**63 - 1)
# Small frames, so bodies of a few hundred bytes take several, and the real size.
CONTENT_SIZES = st.integers(1, 64) | st.just(REAL_SIZE)


def pamqp_bytes(
    number: int,
    max_content_size: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    message_id: str,
    timestamp: int,
    traceparent: str | None,
    attempt: int,
    error: str | None,
) -> bytes:
    """What `channel.basic_publish(body, exchange=, routing_key=, properties=...)` writes."""
    props = properties(message_id, traceparent, attempt, error)
    props.timestamp = datetime.fromtimestamp(timestamp, UTC)
    # aiormq's own split of a body into frames (none for an empty body).
    bodies: list[ContentBody] = aiormq.Channel._split_body(
        SimpleNamespace(max_content_size=max_content_size),  # type: ignore[arg-type]
        body,
    )
    frames: list[pamqp.frame.FrameTypes] = [
        spec.Basic.Publish(exchange=exchange, routing_key=routing_key),
        ContentHeader(0, len(body), props),
        *bodies,
    ]
    return b"".join(pamqp.frame.marshal(frame, number) for frame in frames)


def unmarshalled(data: bytes) -> list[tuple[int, pamqp.frame.FrameTypes]]:
    frames = []
    while data:
        used, channel, frame = pamqp.frame.unmarshal(data)
        frames.append((channel, frame))
        data = data[used:]
    return frames


@PROPERTIES
@given(
    number=st.integers(1, 65535),
    max_content_size=CONTENT_SIZES,
    exchange=EXCHANGES,
    routing_key=ROUTING_KEYS,
    body=st.binary(max_size=300),
    message_id=st.uuids().map(str) | st.text(min_size=1, max_size=63),
    timestamp=st.integers(0, 2**32 - 1),  # pamqp reads later ones as milliseconds
    traceparent=TRACEPARENTS,
    attempt=ATTEMPTS,
    error=ERRORS,
)
@example(1, REAL_SIZE, "inventory.exchange", "inventory.reserved", b"", "id", 0, None, 0, None)
@example(1, REAL_SIZE, "x", "y", bytes(range(256)) * 1100, "id", 1, "00-ab-cd-01", 1, "é" * 1001)
def test_our_frames_are_pamqps_bytes_and_read_back_as_the_message(
    number: int,
    max_content_size: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    message_id: str,
    timestamp: int,
    traceparent: str | None,
    attempt: int,
    error: str | None,
) -> None:
    ours = ChannelFrames(number, max_content_size).publish(
        exchange, routing_key, body, message_id, timestamp, traceparent, attempt, error
    )
    expected = pamqp_bytes(
        number,
        max_content_size,
        exchange,
        routing_key,
        body,
        message_id,
        timestamp,
        traceparent,
        attempt,
        error,
    )
    assert ours == expected

    frames = unmarshalled(ours)
    assert {channel for channel, _ in frames} == {number}
    (_, method), (_, header), *bodies = frames
    assert isinstance(method, spec.Basic.Publish)
    assert (method.exchange, method.routing_key, method.mandatory, method.immediate) == (
        exchange,
        routing_key,
        False,
        False,
    )
    assert isinstance(header, ContentHeader) and header.body_size == len(body)
    sent = properties(message_id, traceparent, attempt, error)
    got = header.properties
    assert (got.content_type, got.delivery_mode, got.message_id, got.headers) == (
        "application/json",
        2,
        message_id,
        sent.headers,
    )
    assert got.timestamp == datetime.fromtimestamp(timestamp, UTC)
    assert all(isinstance(b, ContentBody) and 0 < len(b.value) <= max_content_size for _, b in bodies)
    assert b"".join(b.value for _, b in bodies if isinstance(b, ContentBody)) == body


def test_the_method_frame_is_made_once_per_exchange_and_routing_key() -> None:
    frames = ChannelFrames(3, REAL_SIZE)
    first = frames.publish("a.exchange", "a.key", b"{}", "1", 0, None)
    again = frames.publish("a.exchange", "a.key", b"[]", "2", 0, None)
    other = frames.publish("a.exchange", "b.key", b"{}", "1", 0, None)
    method = pamqp.frame.marshal(spec.Basic.Publish(exchange="a.exchange", routing_key="a.key"), 3)
    assert first.startswith(method) and again.startswith(method) and not other.startswith(method)


def test_a_name_longer_than_a_short_string_is_refused_as_pamqp_refuses_it() -> None:
    with pytest.raises(TypeError):
        spec.Basic.Publish(exchange="x", routing_key="é" * 128).marshal()
    with pytest.raises(ValueError):
        ChannelFrames(1, REAL_SIZE).publish("x", "é" * 128, b"", "1", 0, None)
