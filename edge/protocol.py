"""The client side of the edge: bytes in, exchanges out, answers back in order.

Two layers, as in uvicorn's `httptools_impl.py`:

- `HttpProtocol` is the per-connection state machine. httptools calls it back as bytes are parsed; it
  turns each request into an `Exchange`, queues pipelined ones, runs them one at a time so answers
  go out in request order, enforces the size limits, and applies flow control both ways.
- `Exchange` is the per-request state and the only awaitable surface: the handler reads the request
  body with `receive()` and answers with `respond()`, or `start()` / `write()` / `drain()` / `finish()`.
- `Deadlines` is each worker's one timer: every connection keeps its deadlines as plain numbers
  (a complete head within `header_timeout`, no silence longer than `idle_timeout` while idle, sending
  a body or not reading our answer), and a periodic sweep enforces them. Arming a timer per request
  would cost more than the request's whole header parsing.

Nothing here knows about routes, tokens or upstreams; a handler gets an `Exchange` and must answer it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from time import monotonic
from typing import cast

import httptools

from edge.errors import (
    BadRequest,
    EdgeError,
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedCoding,
    UriTooLong,
)

log = logging.getLogger(__name__)

# Request body bytes held for one exchange before the socket stops being read.
HIGH_WATER = 64 * 1024
# How long a connection closing on unread input keeps discarding it (see `HttpProtocol.linger`).
LINGER_SECONDS = 5.0

STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

# Request headers the protocol itself looks at.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host", b"expect"})

# How the response body goes on the wire.
_AS_IS = 0  # Content-Length, or until close for an HTTP/1.0 client
_CHUNKED = 1
_NO_BODY = 2  # HEAD, 204, 304


@dataclass(frozen=True, slots=True)
class Limits:
    max_target: int = 8 * 1024
    max_headers: int = 32 * 1024
    max_body: int = 10 * 1024 * 1024
    # How long a silent client may hold the edge: idle between requests, mid-body, not reading.
    idle_timeout: float = 30.0
    # How long a client has to send a whole request head, from its first byte (slowloris).
    header_timeout: float = 10.0


# Takes an exchange and either answers it before returning (None), or will answer it from callbacks
# and then call `Exchange.done()` (None), or returns the awaitable that answers it.
Handler = Callable[["Exchange"], Awaitable[None] | None]


def task_cancelled() -> bool:
    """Whether the running task is being cancelled, as opposed to a CancelledError that merely escaped
    from something it awaited (a library's bug), which is an error to answer like any other."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Exchange:
    """One request and its response."""

    __slots__ = (
        "_body",
        "_buffered",
        "_conn",
        "_finished",
        "_mode",
        "_received",
        "_waiter",
        "body_complete",
        "chunked",
        "content_length",
        "dispatched",
        "error",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "peer",
        "response_complete",
        "response_started",
        "status",
        "target",
        "version",
    )

    def __init__(self, conn: HttpProtocol) -> None:
        self._conn = conn
        self.peer = conn.peer
        self.method = ""
        self.target = b""
        self.version = "1.1"
        # Names lower-cased, values as sent.
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.content_length: int | None = None
        self.chunked = False
        self.expect_continue = False
        # Why the request cannot be served (set before or while it is handled); the handler answers it.
        self.error: EdgeError | None = None
        self.dispatched = False
        self.body_complete = False
        self.status = 0
        self.response_started = False
        self.response_complete = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._received = 0
        self._waiter: asyncio.Future[None] | None = None
        self._mode = _AS_IS
        self._finished = False

    # -- request body ------------------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The body received so far and not yet read; b"" once it has all been read.

        Raises the `EdgeError` that cut the body short (too large, malformed, client too slow).
        """
        if self.expect_continue:
            self.expect_continue = False
            if not self.body_complete and not self.response_started:
                self._conn.write(CONTINUE)
        while not self._body and not self.body_complete and self.error is None:
            await self._conn.wait_for_body(self)
        if self.error is not None:
            raise self.error
        body = self._body
        if not body:
            return b""
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        self._conn.update_reading()
        return data

    def _feed(self, data: bytes) -> None:
        self._body.append(data)
        self._buffered += len(data)
        self._wake()

    def _end(self) -> None:
        self.body_complete = True
        self._wake()

    def fail(self, error: EdgeError) -> None:
        """Mark the request unservable; a waiting `receive()` raises it, and the connection closes after."""
        if self.error is None:
            self.error = error
        self.keep_alive = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- response ----------------------------------------------------------------------------------

    def _head(self, status: int, headers: bytes, content_length: int | None, body: bytes = b"") -> bytes:
        """The response head; and `body` after it, unless the answer must not have one."""
        self.status = status
        self.response_started = True
        if not self.body_complete:
            # An answer before the whole request body (a refusal, no destination): the connection will
            # close after it (`HttpProtocol._finished`: unread body bytes would be parsed as the next
            # request). Said here, or the client sends its next request on a connection being closed
            # and sees it dropped without an answer.
            self.keep_alive = False
        parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status, headers]
        if self.method == "HEAD" or status in (204, 304):
            self._mode = _NO_BODY
            if content_length is not None and status != 204:
                parts.append(b"content-length: %d\r\n" % content_length)
        elif content_length is not None:
            self._mode = _AS_IS
            parts.append(b"content-length: %d\r\n" % content_length)
        elif self.version == "1.1":
            self._mode = _CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
        else:
            # An HTTP/1.0 client knows no chunks: the body ends when the connection does.
            self._mode = _AS_IS
            self.keep_alive = False
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        elif self.version == "1.0":
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        if body and self._mode != _NO_BODY:
            parts.append(body)
        return b"".join(parts)

    def start(self, status: int, headers: bytes, content_length: int | None) -> None:
        """Send the status line and headers; `headers` are whole `name: value\\r\\n` lines.

        Framing and `connection` headers are the protocol's business and are added here: the body is
        sent with `content_length` when given, else chunked (or until close for HTTP/1.0).
        """
        self._conn.write(self._head(status, headers, content_length))

    def write(self, data: bytes) -> None:
        if not data or self._mode == _NO_BODY:
            return
        if self._mode == _CHUNKED:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._conn.write(data)

    def finish(self) -> None:
        if self._mode == _CHUNKED:
            self._conn.write(LAST_CHUNK)
        self.response_complete = True

    def respond(self, status: int, headers: bytes, body: bytes) -> None:
        """A whole response in one write (for HEAD, the head of what a GET would get)."""
        self._conn.write(self._head(status, headers, len(body), body))
        self.response_complete = True

    async def drain(self) -> None:
        """Wait while the client is slower than the data we have for it."""
        await self._conn.drain()

    def abort(self) -> None:
        """Give up on this response: whatever was sent stays incomplete and the connection closes."""
        self.keep_alive = False
        self._conn.close()

    def done(self) -> None:
        """The handler is through with this exchange (answered, or aborted); the next one may start."""
        if not self._finished:
            self._finished = True
            self._conn._finished(self)

    def continue_async(self, work: Awaitable[None]) -> None:
        """A handler answering from callbacks hands the rest of the answer to a task (see `Handler`)."""
        self._conn.run_async(self, work)


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
        if name not in _FRAMING:
            return
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
        elif name == b"host":
            self._hosts += 1
        elif name == b"expect" and value.lower() == b"100-continue":
            ex.expect_continue = True

    def on_headers_complete(self) -> None:
        ex, parser = self._parsing, self._parser
        assert ex is not None and parser is not None
        self._in_head = False
        self.head_deadline = 0.0
        ex.method = parser.get_method().decode("ascii")
        ex.version = parser.get_http_version()
        ex.keep_alive = parser.should_keep_alive()
        # RFC 9112, 3.2: exactly one Host in HTTP/1.1; HTTP/1.0 may have none. And 6.1: an HTTP/1.0
        # message with Transfer-Encoding has faulty framing.
        if self._hosts > 1 or (self._hosts == 0 and ex.version != "1.0"):
            raise BadRequest("An HTTP/1.1 request needs exactly one Host header.")
        if ex.chunked and ex.version == "1.0":
            raise BadRequest("Transfer-Encoding is not allowed in HTTP/1.0.")
        # We never tunnel. llhttp would also skip the body of an upgrade request, so refuse those.
        if parser.should_upgrade() and (ex.method == "CONNECT" or ex.chunked or ex.content_length):
            raise BadRequest("Protocol upgrades are not supported.")
        if ex.content_length is not None and ex.content_length > self._limits.max_body:
            raise PayloadTooLarge(f"The request body is over {self._limits.max_body} bytes.")
        self._dispatch(ex)

    def on_body(self, body: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        ex._received += len(body)
        if ex._received > self._limits.max_body:
            raise PayloadTooLarge(f"The request body is over {self._limits.max_body} bytes.")
        ex._feed(body)

    def on_message_complete(self) -> None:
        ex = self._parsing
        assert ex is not None
        self._parsing = None
        ex._end()

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
            self._handler_failed(ex)
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
            self._handler_failed(ex)
        except Exception:
            self._handler_failed(ex)
        finally:
            self._task = None
            ex.done()

    @staticmethod
    def _handler_failed(ex: Exchange) -> None:
        """The handler raised (a bug): a 500 in the contract's shape if nothing was sent yet, as a client
        must never see its connection closed without an answer; the connection closes after it. After a
        whole answer the connection is as the answer said: one said to stay open and then closed would
        drop the client's next request."""
        log.exception("edge handler failed")
        if ex.response_complete:
            return
        ex.keep_alive = False
        if not ex.response_started:
            error = EdgeError()
            ex.respond(error.status, b"content-type: application/json\r\n", error.body())

    def _finished(self, ex: Exchange) -> None:
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
            or (parsing is not None and parsing._buffered > HIGH_WATER)
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
        ex._waiter = waiter
        try:
            await self._wait(
                waiter, lambda: ex.fail(RequestTimeout("The request body did not arrive in time."))
            )
        finally:
            ex._waiter = None

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


class Deadlines:
    """One periodic sweep over a worker's connections, enforcing their deadlines.

    `also` are other deadline holders swept in the same pass (the upstream pools' `expire`).
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
                conn.expire(now)
            for expire in self._also:
                expire(now)
