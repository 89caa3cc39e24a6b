"""Request ids and W3C trace context, carried in context variables across HTTP, gRPC and the bus."""

from __future__ import annotations

import os
import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
traceparent: ContextVar[str] = ContextVar("traceparent", default="")

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str:
    """The caller's id when it is short printable ASCII, else a new one (ids end up in logs)."""
    return value if value and _REQUEST_ID.match(value) else new_request_id()


def child_traceparent(parent: str | None) -> str:
    """A traceparent for our own span: same trace id as `parent` when it is valid, else a new trace."""
    match = _TRACEPARENT.match(parent or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else os.urandom(16).hex()
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"
