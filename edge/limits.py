"""What a client may send the edge, and for how long: the `Limits`, the framing rules every request
head must pass, and `Deadlines`, the one timer of each worker that enforces the time limits.

The framing rules are RFC 9112's, read strictly, as ambiguous framing is how requests get smuggled past
a proxy: one Host in HTTP/1.1, a Transfer-Encoding that is a lone `chunked` (and none in HTTP/1.0), no
upgrades, no body over the limit. httptools (llhttp) already refuses malformed lengths, duplicate
Content-Lengths and Content-Length together with Transfer-Encoding.

The time limits are plain numbers on each connection (a complete head within `header_timeout`, no
silence longer than `idle_timeout` while idle, sending a body or not reading our answer), checked by a
periodic sweep: arming a timer per request would cost more than the request's whole header parsing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from edge.errors import BadRequest, PayloadTooLarge, UnsupportedCoding

if TYPE_CHECKING:
    from edge.exchange import Exchange
    from edge.protocol import HttpProtocol

log = logging.getLogger(__name__)

# Request headers that decide how a request is framed (`frame`; the connection counts Host itself).
FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host", b"expect"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_target: int = 8 * 1024
    max_headers: int = 32 * 1024
    max_body: int = 10 * 1024 * 1024
    # How long a silent client may hold the edge: idle between requests, mid-body, not reading.
    idle_timeout: float = 30.0
    # How long a client has to send a whole request head, from its first byte (slowloris).
    header_timeout: float = 10.0


def frame(ex: Exchange, name: bytes, value: bytes) -> None:
    """Note what a framing header other than Host says about `ex`'s body, refusing what it may not say."""
    if name == b"content-length":
        # llhttp has checked the digits and refused duplicates and CL together with TE.
        ex.content_length = int(value)
    elif name == b"transfer-encoding":
        # Only a lone `chunked`: any other coding (or chunked twice) is framing we would have to
        # guess at, which is how requests get smuggled (RFC 9112, 6.1 and 6.3).
        codings = value.lower().split(b",")
        if ex.chunked or codings[-1].strip() != b"chunked":
            raise BadRequest("The request's Transfer-Encoding does not end in a single chunked.")
        if len(codings) > 1:
            raise UnsupportedCoding()
        ex.chunked = True
    elif name == b"expect" and value.lower() == b"100-continue":
        ex.expect_continue = True


def check_head(ex: Exchange, hosts: int, upgrade: bool, max_body: int) -> None:
    """Refuse a whole request head that breaks the rules: `hosts` Host headers, `upgrade` asked."""
    # RFC 9112, 3.2: exactly one Host in HTTP/1.1; HTTP/1.0 may have none. And 6.1: an HTTP/1.0
    # message with Transfer-Encoding has faulty framing.
    if hosts > 1 or (hosts == 0 and ex.version != "1.0"):
        raise BadRequest("An HTTP/1.1 request needs exactly one Host header.")
    if ex.chunked and ex.version == "1.0":
        raise BadRequest("Transfer-Encoding is not allowed in HTTP/1.0.")
    # We never tunnel. llhttp would also skip the body of an upgrade request, so refuse those.
    if upgrade and (ex.method == "CONNECT" or ex.chunked or ex.content_length):
        raise BadRequest("Protocol upgrades are not supported.")
    if ex.content_length is not None and ex.content_length > max_body:
        raise PayloadTooLarge(f"The request body is over {max_body} bytes.")


class Deadlines:
    """One periodic sweep over a worker's connections, enforcing their deadlines.

    `also` are other deadline holders swept in the same pass (the upstream pools' `expire`, which runs
    each of its connections' the same way). One that raises is logged and skipped (`expire_guarded`):
    the sweep is the worker's only timer, and were it to end, no request of that worker would ever time
    out again.
    """

    def __init__(
        self, connections: set[HttpProtocol], limits: Limits, also: Iterable[Callable[[float], None]] = ()
    ) -> None:
        self._connections = connections
        self._also = list(also)
        # Fine enough for the shortest timeout, never busier than ten sweeps a second.
        self._interval = max(0.01, min(0.1, limits.header_timeout / 4, limits.idle_timeout / 4))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            now = monotonic()
            for conn in [
                c for c in self._connections if c.idle_deadline or c.head_deadline or c.wait_deadline
            ]:
                expire_guarded(conn.expire, now)
            for expire in self._also:
                expire_guarded(expire, now)


def expire_guarded(expire: Callable[[float], None], now: float) -> None:
    """Run one expiry of the deadline sweep; one that raises is logged, and the sweep goes on."""
    try:
        expire(now)
    except Exception:
        log.exception("a deadline's expiry failed; the sweep goes on")
