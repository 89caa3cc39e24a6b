"""One keep-alive HTTP/1.1 connection to a service, carrying one exchange at a time.

Its response is parsed by httptools into per-response state that the proxy either awaits
(`read_head`, `read_body`, `drain`) or is called back on (`watch`: once the answer's head is in, which
for a small answer means all of it, or it failed) without a task or a future. A full body buffer
pauses the socket, so a slow client slows the service down instead of filling the edge's memory. A
service silent for longer than the exchange's timeout fails it with GatewayTimeout: a deadline checked
by the worker's periodic sweep (`Cluster.expire`), not a timer per request. Its `Pool` (edge.upstream)
opens it, lends it out and takes it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, cast

import httptools

from edge.errors import BadGateway, EdgeError, GatewayTimeout

if TYPE_CHECKING:
    from edge.upstream import Pool

# Response body bytes held per connection before the upstream socket stops being read.
HIGH_WATER = 64 * 1024
# Response headers the connection itself looks at.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})


class Connection(asyncio.Protocol):
    """One connection to a service: per-connection state here, per-response state in `_new_response`."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost = False
        # False once anything makes the next exchange on this connection unsafe.
        self.reusable = True
        self.busy = False
        self.idle_since = 0.0
        self._write_paused = False
        self._read_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._watcher: Callable[[], None] | None = None
        # How long the service may stay silent while we wait on it, set per exchange; the loop time
        # past which it has been silent too long while we wait (0: not waiting).
        self._timeout = 0.0
        self.deadline = 0.0
        self._new_response(head_only=False)
        self.request_sent = False

    def _new_response(self, head_only: bool) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.chunked = False
        # The value of a `Connection` header, if the service sent one.
        self.connection: bytes | None = None
        self.head_done = False
        self.complete = False
        self.received_any = False
        self._keep_alive = True
        self._head_only = head_only
        self._interim = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._error: EdgeError | None = None

    @property
    def usable(self) -> bool:
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    # -- sending -----------------------------------------------------------------------------------

    def send_head(self, head: bytes, *, head_only: bool, body_follows: bool, timeout: float) -> None:
        """Start an exchange: the request head, with its body (if any) to follow through `write`.

        `timeout` bounds every wait of this exchange on the service (GatewayTimeout past it).
        """
        if self._head_only:
            # llhttp cannot be told a response answered HEAD, so it waits for a body that never comes;
            # the previous response was one, so start the next from a clean parser.
            self._parser = httptools.HttpResponseParser(self)
        self._new_response(head_only)
        self.request_sent = not body_follows
        self._timeout = timeout
        if self.lost:
            # Lost before it was lent out (a service resetting what it just accepted): `connection_lost`
            # found no exchange to fail, so this one fails now rather than at its timeout.
            self._fail(BadGateway("The upstream service closed the connection before the request."))
            return
        self.write(head)

    def watch(self, callback: Callable[[], None]) -> None:
        """Call back once the response head is in (often the whole response with it), or the exchange
        failed; never from inside the parser. The service has the exchange's timeout meanwhile."""
        self._watcher = callback
        self.deadline = monotonic() + self._timeout

    def _notify(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            self.deadline = 0.0
            watcher()

    def write(self, data: bytes) -> None:
        if self.usable:
            assert self.transport is not None
            self.transport.write(data)

    async def drain(self) -> None:
        while self._write_paused:
            if self._error is not None:
                raise self._error
            await self._wait()

    # -- receiving ---------------------------------------------------------------------------------

    async def read_head(self) -> None:
        while not self.head_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    def take_body(self) -> bytes:
        """The body received so far, without waiting (all of it once `complete`)."""
        body = self._body
        if not body:
            return b""
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self._resume()
        return data

    def _resume(self) -> None:
        self._buffered = 0
        if self._read_paused and self.usable:
            assert self.transport is not None
            self._read_paused = False
            self.transport.resume_reading()

    async def read_body(self) -> bytes:
        """The response body received so far and not yet read; b"" at its end."""
        while not self._body:
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        return self.take_body()

    @property
    def error(self) -> EdgeError | None:
        return self._error

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        self.deadline = monotonic() + self._timeout
        try:
            await waiter
        finally:
            self.deadline = 0.0
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expire(self, now: float) -> None:
        if self.deadline and now > self.deadline:
            self._fail(GatewayTimeout())

    def _fail(self, error: EdgeError) -> None:
        if self._error is None:
            self._error = error
        self.reusable = False
        self._wake()
        self._notify()

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        self.pool.forget(self)
        if self.busy and not self.complete:
            if self.head_done and not self.chunked and self.content_length is None:
                # A response without length or chunks ends with the connection (RFC 9112, 6.3).
                self.complete = True
            else:
                self._fail(BadGateway("The upstream service closed the connection mid-response."))
        self._write_paused = False
        self._wake()
        self._notify()

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.complete:
            # Bytes nobody asked for: the connection is out of step and cannot be trusted again.
            self.close()
            return
        self.received_any = True
        if self.deadline:
            # Not silent: the service has until a timeout from now for the next bytes.
            self.deadline = monotonic() + self._timeout
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, EdgeError) else BadGateway("Invalid HTTP from upstream."))
            self.close()
            return
        if self._watcher is not None and self.head_done:
            # Complete (the common case of a small answer arriving in one piece), or the rest of the
            # body is still coming: either way the watcher takes it from here, with no extra latency.
            self._notify()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.headers.append((name, value))
        if name in _FRAMING:
            if name == b"content-length":
                self.content_length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = True
            else:
                self.connection = value if self.connection is None else self.connection + b"," + value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status == 101:
            raise BadGateway("The upstream service switched protocols unasked.")
        if status < 200:
            # 100 Continue, 103 Early Hints: informational, not forwarded; the real answer follows.
            self._interim = True
            self.headers = []
            self.content_length = self.connection = None
            self.chunked = False
            return
        self.status = status
        self._keep_alive = self._parser.should_keep_alive()
        self.head_done = True
        if self._head_only:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        if not self._keep_alive:
            self.reusable = False
        self._wake()

    # -- lifecycle ---------------------------------------------------------------------------------

    def release(self) -> None:
        """Hand the connection back to its pool, which keeps it only if the exchange ended cleanly."""
        self.pool.release(self)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.pool.forget(self)
