"""The AMQP 0-9-1 frames of one published event, written directly: the outbox relay's hot path.

pamqp builds and validates a `Basic.Publish`, a `ContentHeader` and `Basic.Properties` per message and
encodes them field by field through its generic type tables: about half of the relay's CPU per event
(68 -> 35 µs, perf/README.md "Inventory reservations"). These are the same bytes, for the
properties `kit.bus.properties` sets and nothing else, from a few `struct` packs, with the method
frame made once per channel, exchange and routing key. tests/kit/test_amqp_frames.py checks them
byte for byte against `pamqp.frame.marshal`; anything that publishes other properties uses pamqp.
"""

from __future__ import annotations

import struct

from pamqp import encode

_FRAME = struct.Struct(">BHI")  # frame type, channel, payload size; the payload, then the frame end
_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_PUBLISH = struct.Struct(">IH")  # class 60 (Basic) method 40 (Publish); the ticket, always 0
_PUBLISH_INDEX = 60 << 16 | 40
_CONTENT = struct.Struct(">HHQ")  # class 60, weight 0, body size
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _short_string(text: str) -> bytes:
    raw = text.encode()
    return bytes((len(raw),)) + raw  # more than 255 bytes: ValueError (pamqp: TypeError)


def _long_string(text: str) -> bytes:
    raw = text.encode()
    return _U32.pack(len(raw)) + raw


# Basic.Properties with content_type, headers, delivery_mode, message_id and timestamp set (pamqp's
# flags 0x8000 | 0x2000 | 0x1000 | 0x80 | 0x40), in the order of the spec, which pamqp follows; the
# constant start: the flags and the content type.
_PROPERTIES = struct.pack(">H", 0xB0C0) + _short_string("application/json")
_PERSISTENT = b"\x02"
# The headers table, its keys sorted (as pamqp writes a table): traceparent, x-attempt, x-error.
_TRACEPARENT = _short_string("traceparent") + b"S"
_ATTEMPT = _short_string("x-attempt")
_SMALL_ATTEMPTS = tuple(_ATTEMPT + b"b" + bytes((n,)) for n in range(128))  # a signed byte, 0-127
_ERROR = _short_string("x-error") + b"S"
ERROR_LENGTH = 1000  # characters of the error kept in x-error, here and by kit.bus.properties


def _headers(traceparent: str | None, attempt: int, error: str | None) -> bytes:
    parts = [_TRACEPARENT + _long_string(traceparent)] if traceparent else []
    # pamqp picks the smallest integer type that holds the value; past a byte, it is asked.
    parts.append(_SMALL_ATTEMPTS[attempt] if 0 <= attempt < 128 else _ATTEMPT + encode.table_integer(attempt))
    if error:
        parts.append(_ERROR + _long_string(error[:ERROR_LENGTH]))
    table = b"".join(parts)
    return _U32.pack(len(table)) + table


class ChannelFrames:
    """Writes messages' frames for one channel: its number, and its largest body frame (the
    connection's frame_max less a frame's own 8 bytes, aiormq's `max_content_size`)."""

    def __init__(self, number: int, max_content_size: int) -> None:
        self.number = number
        self.max_content_size = max_content_size
        self._methods: dict[tuple[str, str], bytes] = {}

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        timestamp: int,
        traceparent: str | None,
        attempt: int = 0,
        error: str | None = None,
    ) -> bytes:
        """`Basic.Publish`, the content header and the body frames, as `channel.basic_publish(body,
        exchange=, routing_key=, properties=kit.bus.properties(message_id, traceparent, attempt,
        error))` sends them at `timestamp` (seconds since the epoch). `message_id` is not empty (pamqp
        would leave an empty one out)."""
        method = self._methods.get((exchange, routing_key)) or self._method(exchange, routing_key)
        properties = b"".join(
            (
                _PROPERTIES,
                _headers(traceparent, attempt, error),
                _PERSISTENT,
                _short_string(message_id),
                _U64.pack(timestamp),
            )
        )
        size, number = len(body), self.number
        parts = [
            method,
            _FRAME.pack(_HEADER, number, _CONTENT.size + len(properties)),
            _CONTENT.pack(60, 0, size),
            properties,
            _END,
        ]
        # As aiormq splits a body: no body frame for an empty one.
        step = self.max_content_size
        for start in range(0, size, step):
            chunk = body[start : start + step] if size > step else body
            parts += (_FRAME.pack(_BODY, number, len(chunk)), chunk, _END)
        return b"".join(parts)

    def _method(self, exchange: str, routing_key: str) -> bytes:
        # Not mandatory, not immediate: the last octet, their two bits, is 0.
        payload = _PUBLISH.pack(_PUBLISH_INDEX, 0) + _short_string(exchange) + _short_string(routing_key)
        frame = _FRAME.pack(_METHOD, self.number, len(payload) + 1) + payload + b"\x00" + _END
        self._methods[exchange, routing_key] = frame
        return frame
