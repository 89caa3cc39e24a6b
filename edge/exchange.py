"""One request on a client connection and its response: the only surface a handler sees.

A `Handler` gets an `Exchange`: it reads the request body with `receive()` and answers with `respond()`,
or `start()` / `write()` / `drain()` / `finish()`. How the response goes on the wire is decided here:
its framing (Content-Length, chunked, or until close for an HTTP/1.0 client; no body for HEAD, 204,
304) and its `connection` header. The connection it came on (`edge.protocol.HttpProtocol`) fills it
as the request is parsed and runs one exchange at a time, so answers go out in request order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.protocol import HttpProtocol

log = logging.getLogger(__name__)

STATUS_LINES: dict[int, bytes] = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

# How the response body goes on the wire.
_AS_IS = 0  # Content-Length, or until close for an HTTP/1.0 client
_CHUNKED = 1
_NO_BODY = 2  # HEAD, 204, 304

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
        "_conn",
        "_finished",
        "_mode",
        "body_complete",
        "body_waiter",
        "buffered",
        "chunked",
        "content_length",
        "dispatched",
        "error",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "peer",
        "received",
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
        # Body pieces not yet read; bytes held unread and received in all (the connection bounds both),
        # and a `receive()` waiting for more.
        self._body: list[bytes] = []
        self.buffered = 0
        self.received = 0
        self.body_waiter: asyncio.Future[None] | None = None
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
        self.buffered = 0
        self._conn.update_reading()
        return data

    # The connection's parser fills the body in.
    def feed(self, data: bytes) -> None:
        self._body.append(data)
        self.buffered += len(data)
        self._wake()

    def end(self) -> None:
        self.body_complete = True
        self._wake()

    def fail(self, error: EdgeError) -> None:
        """Mark the request unservable; a waiting `receive()` raises it, and the connection closes after."""
        if self.error is None:
            self.error = error
        self.keep_alive = False
        self._wake()

    def _wake(self) -> None:
        waiter = self.body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- response ----------------------------------------------------------------------------------

    def _head(self, status: int, headers: bytes, content_length: int | None, body: bytes = b"") -> bytes:
        """The response head; and `body` after it, unless the answer must not have one."""
        self.status = status
        self.response_started = True
        if not self.body_complete:
            # An answer before the whole request body (a refusal, no destination): the connection will
            # close after it (`HttpProtocol.finish_exchange`: unread body bytes would be parsed as the next
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

    def handler_failed(self) -> None:
        """The handler raised (a bug): a 500 in the contract's shape if nothing was sent yet, as a client
        must never see its connection closed without an answer; the connection closes after it. After a
        whole answer the connection is as the answer said: one said to stay open and then closed would
        drop the client's next request."""
        log.exception("edge handler failed")
        if self.response_complete:
            return
        self.keep_alive = False
        if not self.response_started:
            error = EdgeError()
            self.respond(error.status, b"content-type: application/json\r\n", error.body())

    def done(self) -> None:
        """The handler is through with this exchange (answered, or aborted); the next one may start."""
        if not self._finished:
            self._finished = True
            self._conn.finish_exchange(self)

    def continue_async(self, work: Awaitable[None]) -> None:
        """A handler answering from callbacks hands the rest of the answer to a task (see `Handler`)."""
        self._conn.run_async(self, work)
