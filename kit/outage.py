"""How an HTTP request meets a dependency that failed: a clean 503 with `Retry-After`, never a 500, and
a read that met a connection the server had cut is tried once more on fresh connections.

A PostgreSQL restart cuts every pooled connection; the pool only notices a cut connection when it
next uses it, so the first request on each fails with `ConnectionDoesNotExistError`,
`InternalClientError` ("cannot switch to state 12; another operation is in progress") and the like.
A GET or HEAD has no effect to double, so `kit.metrics.Observe` runs it again once after
`fresh_connections` has retired the whole pool; anything else is answered with a 503 the client may
retry. Errors a request itself caused (a unique violation, a bad value) are 4xx handlers in `kit.app`.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from starlette.types import Message, Scope

from kit.errors import DEPENDENCY_ERRORS, ServiceUnavailable
from kit.http import encode

log = logging.getLogger(__name__)

# The connection itself is gone (cut by the server, reset, or left mid-protocol), so another
# connection may well succeed; a query that failed on a healthy connection would fail again.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    ConnectionError,
)
RETRIED_METHODS = frozenset({"GET", "HEAD"})

_UNAVAILABLE = ServiceUnavailable("A dependency is unavailable, please retry")
_UNAVAILABLE_BODY = encode(_UNAVAILABLE.body())
_UNAVAILABLE_HEADERS = [
    (b"content-type", b"application/json"),
    *((name.lower().encode(), value.encode()) for name, value in _UNAVAILABLE.headers.items()),
]


def is_dependency_failure(exc: Exception) -> bool:
    return isinstance(exc, DEPENDENCY_ERRORS)


def worth_retrying(scope: Scope, exc: Exception) -> bool:
    """Whether the request may run again: a read whose database connection was cut."""
    return scope["method"] in RETRIED_METHODS and isinstance(exc, CONNECTION_LOST)


async def fresh_connections(scope: Scope) -> None:
    """Retire every connection of the app's pool: a server that cut one has usually cut them all."""
    deps: Any = getattr(scope["app"].state, "deps", None)
    if deps is not None:
        await deps.db.expire_connections()
    log.info("database connection lost; read retried on a fresh one", extra={"path": scope.get("path")})


def unavailable(scope: Scope, exc: Exception) -> tuple[Message, Message]:
    """The 503 answering a request that met `exc`, as its two ASGI messages."""
    log.warning("dependency failure", extra={"error": repr(exc), "path": scope.get("path")})
    return (
        {"type": "http.response.start", "status": 503, "headers": list(_UNAVAILABLE_HEADERS)},
        {"type": "http.response.body", "body": _UNAVAILABLE_BODY},
    )


async def no_body() -> Message:
    """`receive` for the second run of a read: its (empty) body was taken by the first."""
    return {"type": "http.request", "body": b"", "more_body": False}
