"""The client side of the edge: bytes in, exchanges out, answers back in order.

Two layers, as in uvicorn's `httptools_impl.py`: `HttpProtocol` here is the per-connection state
machine, and `Exchange` (edge.exchange) the per-request state and the handler's only surface. httptools
calls the protocol back as bytes are parsed; it turns each request into an `Exchange` (its head held
to the `Limits` and framing rules of edge.limits), queues pipelined ones, runs them one at a time so
answers go out in request order, and applies flow control both ways. Its time limits are deadlines
that the worker's one periodic sweep enforces (`edge.limits.Deadlines`).

Nothing here knows about routes, tokens or upstreams; a handler gets an `Exchange` and must answer it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import cast

import httptools

from edge.errors import BadRequest, EdgeError, HeadersTooLarge, PayloadTooLarge, RequestTimeout, UriTooLong
from edge.exchange import Exchange, Handler, task_cancelled
from edge.limits import FRAMING, Limits, check_head, frame

log = logging.getLogger(__name__)

# Request body bytes held for one exchange before the socket stops being read.
HIGH_WATER = 64 * 1024
# How long a connection closing on unread input keeps discarding it (see `HttpProtocol.linger`).
LINGER_SECONDS = 5.0


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, handler: Handler, limits: Limits, connections: set[HttpProtocol]) -> None:
        self._handler = handler
        self._limits = limits
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self._closed = False
        self._stopping = False
        self._lingering = False
        # Exchanges parsed and not yet answered; the first one is being handled (by `_task`, if async)
        # once `_started`.
        self._pipeline: deque[Exchange] = deque()
        self._started: Exchange | None = None
        self._task: asyncio.Task[None] | None = None
        # The exchange the parser is filling, from its first byte to the end of its body.
        self._parsing: Exchange | None = None
        self._in_head = False
        self._head_wire_bytes = 0
        self._header_bytes = 0
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._hosts = 0
        self._max_target = limits.max_target
        self._max_headers = limits.max_headers
        # Loop times past which the connection is given up (0: none); see `Deadlines`.
        self.idle_deadline = 0.0
        self.head_deadline = 0.0
        self.wait_deadline = 0.0
        self._on_wait_expired: Callable[[], None] | None = None
        # Resolved when the connection is gone, for a graceful stop to wait on.
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        self._connections.add(self)
        self.idle_deadline = monotonic() + self._limits.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._parser = None
        self._connections.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        # Nobody is left to answer: stop the upstream work too (the handler's cleanup runs on cancel).
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return
        open_head = self._parsing if self._in_head else None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # llhttp stops after a request asking to upgrade; we serve it as a plain request (the edge
            # drops `Upgrade`) and what follows it on the wire is the next request.
            offset = upgrade.args[0]
            if offset < len(data):
                self.data_received(data[offset:])
                return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, EdgeError):
                self._reject(cause)
            else:
                log.error("edge parser callback failed", exc_info=cause)
                self._reject(EdgeError())
        except httptools.HttpParserError as exc:
            self._reject(BadRequest(f"Malformed HTTP request: {exc}."))
        if open_head is not None and self._parsing is open_head and self._in_head:
            # httptools holds a header line until it ends, so on_header cannot bound one that never
            # does. A head open before and after these bytes is all of them (counting a read that also
            # carried the head's end, or a body, would refuse a request whose head spanned two reads);
            # the read a head starts in is not counted, so what it holds is at most the limit plus a read.
            self._head_wire_bytes += len(data)
            if self._head_wire_bytes > self._max_target + self._max_headers:
                self._reject(HeadersTooLarge())
        # Exchanges start once the parser is done with these bytes, never from inside its callbacks:
        # a request answered at once must not close the connection under the parser's feet.
        self._kick()
        if self._read_paused or len(self._pipeline) > 1 or self._parser is None or self._parsing is not None:
            self.update_reading()

    def _kick(self) -> None:
        if self._started is None and self._pipeline:
            self._start(self._pipeline[0])

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsing = Exchange(self)
        self._in_head = True
        self._head_wire_bytes = 0
        self._header_bytes = 0
        self._hosts = 0
        self.idle_deadline = 0.0
        self.head_deadline = monotonic() + self._limits.header_timeout

    def on_url(self, url: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        ex.target += url
        if len(ex.target) > self._max_target:
            raise UriTooLong()

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._max_headers:
            raise HeadersTooLarge()
        name = name.lower()
        ex.headers.append((name, value))
        if name not in FRAMING:
            return
        if name == b"host":
            self._hosts += 1
        else:
            frame(ex, name, value)

    def on_headers_complete(self) -> None:
        ex, parser = self._parsing, self._parser
        assert ex is not None and parser is not None
        self._in_head = False
        self.head_deadline = 0.0
        ex.method = parser.get_method().decode("ascii")
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        check_head(ex, self._hosts, parser.should_upgrade(), self._limits.max_body)
        self._dispatch(ex)

    def on_body(self, body: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        ex.received += len(body)
        if ex.received > self._limits.max_body:
            raise PayloadTooLarge(f"The request body is over {self._limits.max_body} bytes.")
        ex.feed(body)

    def on_message_complete(self) -> None:
        ex = self._parsing
        assert ex is not None
        self._parsing = None
        ex.end()

    # -- running exchanges -------------------------------------------------------------------------

    def _dispatch(self, ex: Exchange) -> None:
        ex.dispatched = True
        if self._stopping:
            ex.keep_alive = False
        self._pipeline.append(ex)
        self.idle_deadline = 0.0

    def _start(self, ex: Exchange) -> None:
        """Hand the exchange to the handler; run what it returns, if anything, as this connection's task."""
        self._started = ex
        try:
            work = self._handler(ex)
        except Exception:
            ex.handler_failed()
            ex.done()
            return
        if work is not None:
            self.run_async(ex, work)

    def run_async(self, ex: Exchange, work: Awaitable[None]) -> None:
        """Finish the exchange with `work`, a task cancelled if the client goes away meanwhile."""
        self._task = self._loop.create_task(self._run(ex, work))

    async def _run(self, ex: Exchange, work: Awaitable[None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            if task_cancelled():
                # The client went away (`connection_lost`) or the edge stops: nobody to answer.
                raise
            # Escaped from something the handler awaited, nobody cancelled us: a failure like any other.
            ex.handler_failed()
        except Exception:
            ex.handler_failed()
        finally:
            self._task = None
            ex.done()

    def finish_exchange(self, ex: Exchange) -> None:
        """The exchange at the head of the pipeline is over: start the next one, or close."""
        pipeline = self._pipeline
        if not pipeline or pipeline[0] is not ex:
            return
        pipeline.popleft()
        self._started = None
        if self._closed:
            return
        # Unread body bytes would be parsed as the next request, so an unfinished body means close.
        if not (ex.keep_alive and ex.response_complete and ex.body_complete) or self._stopping:
            if ex.body_complete:
                self.close()
            else:
                self.linger()
            return
        self.update_reading()
        if pipeline:
            self._start(pipeline[0])
        elif self._parsing is None:
            self.idle_deadline = monotonic() + self._limits.idle_timeout

    def _reject(self, error: EdgeError) -> None:
        """Stop parsing; the error is answered in its turn, then the connection closes."""
        self._parser = None
        ex, self._parsing = self._parsing, None
        if ex is not None and ex.dispatched:
            ex.fail(error)
            return
        if ex is None:
            ex = Exchange(self)
        ex.fail(error)
        self._dispatch(ex)

    # -- flow control and timers -------------------------------------------------------------------

    def update_reading(self) -> None:
        """Read while there is room: one exchange waiting behind the current one, a bounded body buffer."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        parsing = self._parsing
        pause = (
            self._parser is None
            or len(self._pipeline) > 1
            or (parsing is not None and parsing.buffered > HIGH_WATER)
        )
        if pause != self._read_paused:
            self._read_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    async def _wait(self, waiter: asyncio.Future[None], on_expiry: Callable[[], None]) -> None:
        self.wait_deadline = monotonic() + self._limits.idle_timeout
        self._on_wait_expired = on_expiry
        try:
            await waiter
        finally:
            self.wait_deadline = 0.0
            self._on_wait_expired = None

    async def wait_for_body(self, ex: Exchange) -> None:
        waiter = self._loop.create_future()
        ex.body_waiter = waiter
        try:
            await self._wait(
                waiter, lambda: ex.fail(RequestTimeout("The request body did not arrive in time."))
            )
        finally:
            ex.body_waiter = None

    async def drain(self) -> None:
        if not self._write_paused or self._closed:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        # A client that stops reading must not hold the edge forever; its unsent data is dropped.
        await self._wait(waiter, self.abort)

    def expire(self, now: float) -> None:
        """Act on whichever deadline has passed (called by `Deadlines`)."""
        if self.wait_deadline and now > self.wait_deadline:
            self.wait_deadline = 0.0
            if self._on_wait_expired is not None:
                self._on_wait_expired()
        if self.head_deadline and now > self.head_deadline:
            if self._read_paused:
                # The head is stuck behind our own back-pressure, not the client's slowness.
                self.head_deadline = now + self._limits.header_timeout
            else:
                self.head_deadline = 0.0
                self._reject(RequestTimeout("The request head did not arrive in time."))
                self._kick()
                self.update_reading()
        if self.idle_deadline and now > self.idle_deadline:
            self.idle_deadline = 0.0
            if not self._pipeline:
                self.close()

    # -- writing and closing -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close(self) -> None:
        """Close after what was written has been sent; nothing more is parsed meanwhile."""
        self._parser = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def linger(self) -> None:
        """Close while the client may still be sending (a refused upload, a rejected head).

        Closing a socket with unread input makes the kernel answer with a reset, and a reset can wipe
        our answer from the client's buffers before it reads it: a client still uploading would see
        "connection reset" instead of our 413. So, as nginx's lingering close: send our FIN, read and
        drop whatever still comes for a while, and close when the client does.
        """
        self._parser = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        self._read_paused = False
        transport.resume_reading()
        self.head_deadline = self.wait_deadline = 0.0
        self.idle_deadline = monotonic() + LINGER_SECONDS
        self._on_wait_expired = None

    def abort(self) -> None:
        """Close now, dropping unsent data."""
        if self.transport is not None:
            self.transport.abort()

    def shutdown(self) -> None:
        """Finish the exchange in progress, if any, then close; used by a graceful stop."""
        self._stopping = True
        if not self._pipeline:
            self.close()
            return
        for ex in self._pipeline:
            if not ex.response_started:
                ex.keep_alive = False
