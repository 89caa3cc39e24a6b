"""Request ids and W3C trace context, carried in context variables across HTTP, gRPC and the bus."""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits

request_id: ContextVar[str] = ContextVar("request_id", default="")
traceparent: ContextVar[str] = ContextVar("traceparent", default="")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_NO_TRACE = "0" * 32
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# uuid4's version (4) and variant (RFC 4122) bits, to clear and to set in 128 random bits.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A new id shaped like `uuid.uuid4().hex`.

    Built from `random.getrandbits` (reseeded in every forked worker) rather than `uuid4()`: it runs on
    every request without an id, and `uuid4` (os.urandom plus a UUID object) cost more than the rest of
    the middleware. Ids need to be unique, not unguessable.
    """
    return f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


def sane_request_id(value: str | None) -> str:
    """The caller's id when it is short printable ASCII, else a new one (ids end up in logs)."""
    return value if value and _REQUEST_ID.match(value) else new_request_id()


def unsampled(traceparent: str) -> bool:
    """Whether `traceparent` is a valid trace context whose sampled flag is clear."""
    match = _TRACEPARENT.match(traceparent)
    return match is not None and match.group(1) != _NO_TRACE and not int(match.group(3), 16) & 1


def child_traceparent(parent: str | None) -> str:
    """A traceparent for our own span while this process does not trace: same trace id and flags as
    `parent` when it is valid, else a new trace marked not sampled.

    Not sampled, because nothing here records it: marked sampled, every traced service behind this one
    (parent-based samplers follow the flag) would keep every trace, at the full cost of tracing.
    """
    match = _TRACEPARENT.match(parent) if parent else None
    # getrandbits, not os.urandom (a system call): this runs on every request, and W3C ids must be
    # random, not secret. `or 1`: an all-zero id is invalid.
    if match is not None and match.group(1) != _NO_TRACE:
        trace_id, flags = match.group(1), match.group(3)
    else:
        trace_id, flags = f"{getrandbits(128) or 1:032x}", "00"
    return f"00-{trace_id}-{getrandbits(64) or 1:016x}-{flags}"
