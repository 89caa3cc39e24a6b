"""The edge's header policy as data, and the small helpers that apply it to one request.

Hop-by-hop headers (and those a `Connection` header names) never cross the edge; the identity headers
(`X-User-*`) are the edge's alone; `X-Request-ID` is the client's when sane, else new; `traceparent`
is kept when valid, else started; the framing and forwarding headers are rewritten; CORS response
headers are the edge's alone. `edge.proxy` applies it in one pass over each request's headers.
"""

from __future__ import annotations

import os
import random
import re
from urllib.parse import unquote

from edge.errors import BadRequest

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
IDENTITY = frozenset({b"x-user-id", b"x-user-roles", b"x-user-email"})
# Request headers the edge writes itself; whatever the client sent under these names is replaced.
REQUEST_OWNED = (
    HOP_BY_HOP
    | IDENTITY
    | {
        b"x-request-id",
        b"traceparent",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"content-length",
        b"expect",
    }
)
RESPONSE_OWNED = HOP_BY_HOP | {
    b"content-length",
    b"x-request-id",
    b"access-control-allow-origin",
    b"access-control-allow-credentials",
    b"access-control-expose-headers",
}
# Client headers the edge reads, by what it does with them (step 1 of edge.proxy).
KIND_SKIP, KIND_REQUEST_ID, KIND_TRACEPARENT, KIND_FORWARDED_FOR, KIND_CONNECTION = range(5)
KIND_AUTHORIZATION, KIND_ORIGIN, KIND_PREFLIGHT, KIND_HOST = range(5, 9)
INTERESTING: dict[bytes, int] = {name: KIND_SKIP for name in REQUEST_OWNED} | {
    b"x-request-id": KIND_REQUEST_ID,
    b"traceparent": KIND_TRACEPARENT,
    b"x-forwarded-for": KIND_FORWARDED_FOR,
    b"connection": KIND_CONNECTION,
    b"authorization": KIND_AUTHORIZATION,
    b"origin": KIND_ORIGIN,
    b"access-control-request-method": KIND_PREFLIGHT,
    b"host": KIND_HOST,
}

SANE_REQUEST_ID = re.compile(rb"[\x20-\x7e]{1,128}")
# W3C trace context: version (not ff), trace id and parent id (not all zeros), flags.
TRACEPARENT_FORM = re.compile(rb"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def sane_traceparent(value: bytes) -> bool:
    if TRACEPARENT_FORM.match(value) is None:
        return False
    # Version 00 is exactly 55 bytes; later versions may append fields after a dash.
    return len(value) == 55 or (not value.startswith(b"00") and value[55:56] == b"-")


def new_traceparent() -> bytes:
    """A new trace for a request without a valid traceparent while the edge does not trace (tracing on,
    its span's context is sent instead: edge.spans). Marked not sampled, as kit.tracing does: marked
    sampled, every traced service behind the edge (parent-based samplers follow the flag) would keep
    every trace."""
    # Not a secret, only unique: the Mersenne Twister (reseeded in each forked worker) is plenty.
    return b"00-%032x-%016x-00" % (random.getrandbits(128) or 1, random.getrandbits(64) or 1)


def connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(token.strip().lower() for token in value.split(b","))


def route_path(target: bytes) -> str:
    """The path to route on: percent-decoded, refused if it is not a path or has dot segments.

    Deciding on the decoded path means `/api/users/me%2Fx/avatar` is not the public avatar route, and
    refusing `.`/`..` means no service can resolve a path into a route other than the one we checked.
    """
    if not target.startswith(b"/"):
        raise BadRequest("The request target must be a path.")
    path = target.split(b"?", 1)[0].decode("latin-1")
    if "%" in path:
        path = unquote(path)
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        raise BadRequest("Dot segments are not allowed in the path.")
    return path


class RequestIds:
    """Unique request ids without a syscall: a random per-process prefix and a counter, 32 hex digits."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex().encode()
        self._count = 0

    def __call__(self) -> bytes:
        self._count += 1
        return b"%s%016x" % (self._prefix, self._count)
