"""One pipelined Redis connection for the cache's hot reads: RESP on an asyncio protocol of our own.

A cached read is one GET or EVALSHA. Through redis-py each costs more Python than the round trip
(connection checkout, command packing, a task-backed timeout, the parser's buffer object); here a
command is a few byte joins, one write shared by every command of the same turn of the event loop
(a system call each was a third of svc_product's Python time), and a future that `data_received`
resolves from hiredis's reader. Every caller shares the connection: Redis answers in order, so the
futures wait in a FIFO, and replies that arrive together are resolved in one wake-up
(perf/README.md, "The cache's lane", has the figures).

Failures surface as redis-py's exceptions (`ConnectionError`, `TimeoutError`, `ResponseError`,
`NoScriptError`), so callers handle them as they would the client's. A lost connection fails the
commands in flight and the next command dials again. Instead of a timer per command, one timer
watches the oldest command in flight: when it has waited longer than the timeout, the connection is
dropped and everything in flight fails (a reply may still come; it must not be matched to the next).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from kit.near import NearCache

Arg = bytes | str | int


def bulk(arg: Arg) -> bytes:
    """One argument of a command in RESP (a bulk string)."""
    data = arg if isinstance(arg, bytes) else str(arg).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(*args: Arg) -> bytes:
    """A command in RESP: an array of bulk strings."""
    return prefix(len(args), *args)


def prefix(count: int, *first: Arg) -> bytes:
    """The start of a command of `count` arguments, `first` among them; `bulk` each of the rest onto it.
    A hot command's constant start (EVALSHA, its digest, its key count) is packed once this way."""
    return b"*%d\r\n%b" % (count, b"".join(map(bulk, first)))


class _Connection(asyncio.Protocol):
    """Replies matched to the commands in flight, in order; RESP3 pushes, which answer no command, handed
    to `near` (invalidations), which is emptied when the connection ends."""

    def __init__(self, timeout: float | None, near: NearCache | None) -> None:
        self.timeout = timeout
        self.near = near
        self.reader = hiredis.Reader(replyError=ResponseError)
        # (future, deadline) per command sent and not yet answered, oldest first.
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.watch: asyncio.TimerHandle | None = None
        # Commands sent during this turn of the loop, written together at its end: a write is a
        # system call, and under load many requests send their lookup in the same turn.
        self.unwritten: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not derive from asyncio.Transport, so no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.closed or self.transport is None:
            raise ConnectionError("Redis connection closed")
        reply = self.loop.create_future()
        if self.timeout is None:
            self.waiting.append((reply, 0.0))
        else:
            deadline = self.loop.time() + self.timeout
            self.waiting.append((reply, deadline))
            if self.watch is None:
                self.watch = self.loop.call_at(deadline, self._check_oldest)
        if not self.unwritten:
            self.loop.call_soon(self._write)
        self.unwritten.append(command)
        return reply

    def _write(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.unwritten))
        self.unwritten.clear()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while (reply := self.reader.gets()) is not False:
            if type(reply) is hiredis.PushNotification:
                if self.near is not None and reply[0] == b"invalidate":
                    self.near.forget(reply[1])
                continue
            if not waiting:
                self.fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            future = waiting.popleft()[0]
            if future.done():  # its caller was cancelled; the reply is still its own
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(_typed(reply))
            else:
                future.set_result(reply)

    def _check_oldest(self) -> None:
        self.watch = None
        if not self.waiting:
            return
        deadline = self.waiting[0][1]
        if self.loop.time() >= deadline:
            self.fail(TimeoutError(f"Redis did not answer within {self.timeout} s"))
        else:
            self.watch = self.loop.call_at(deadline, self._check_oldest)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis connection lost: {exc or 'closed by the server'}"))

    def fail(self, error: Exception) -> None:
        if self.closed:  # aborting below calls connection_lost, which comes back here
            return
        self.closed = True
        if self.near is not None:
            self.near.forget(None)  # what Redis tracked for this connection ends with it
        if self.transport is not None:
            self.transport.abort()
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)


def _typed(error: ResponseError) -> ResponseError:
    if str(error).startswith("NOSCRIPT"):
        return NoScriptError(str(error))
    return error


class RedisLane:
    """Commands on one shared connection to the server that redis-py's `connection_kwargs` name (the
    client's URL: host and port or a unix socket, TLS, db, username, password, socket timeout); dialled
    on first use and again after a failure."""

    def __init__(self, connection_kwargs: dict[str, Any], tls: bool = False, near: bool = False) -> None:
        self.kwargs = connection_kwargs
        self.tls = tls
        self.timeout: float | None = connection_kwargs.get("socket_timeout")
        self.hello: list[bytes] = []
        if password := connection_kwargs.get("password"):
            username = connection_kwargs.get("username")
            self.hello.append(pack("AUTH", *([username] if username else []), password))
        if db := int(connection_kwargs.get("db") or 0):
            self.hello.append(pack("SELECT", db))
        # With a near cache, the connection speaks RESP3 and has Redis track the keys it reads (Redis 6+).
        self.near = NearCache() if near else None
        if near:
            self.hello += [pack("HELLO", 3), pack("CLIENT", "TRACKING", "ON")]
        self._connection: _Connection | None = None
        self._dialling: asyncio.Task[_Connection] | None = None

    @property
    def address(self) -> str:
        path = self.kwargs.get("path")
        return (
            str(path) if path else f"{self.kwargs.get('host', 'localhost')}:{self.kwargs.get('port', 6379)}"
        )

    async def execute(self, *args: Arg) -> Any:
        return await self.send(pack(*args))

    async def send(self, command: bytes) -> Any:
        """The reply to one packed command (`pack`, or `prefix` and `bulk`)."""
        connection = self._connection
        if connection is None or connection.closed:
            if self._dialling is None or self._dialling.done():
                self._dialling = asyncio.ensure_future(self._open())
            # Shielded: a caller given up on must not abort the dial the others are waiting for.
            connection = await asyncio.shield(self._dialling)
        return await connection.send(command)

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        kwargs = self.kwargs
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(kwargs.get("socket_connect_timeout") or self.timeout):
                if path := kwargs.get("path"):
                    _, connection = await loop.create_unix_connection(
                        lambda: _Connection(self.timeout, self.near), path
                    )
                else:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self.timeout, self.near),
                        kwargs.get("host", "localhost"),
                        int(kwargs.get("port", 6379)),
                        ssl=self._tls_context() if self.tls else None,
                    )
                for command in self.hello:
                    await connection.send(command)
        except BaseException as exc:
            if connection is not None:
                connection.fail(ConnectionError("Redis refused the connection's set-up"))
            if isinstance(exc, asyncio.TimeoutError):  # before OSError: the built-in is one
                raise TimeoutError(f"Redis at {self.address} did not answer") from exc
            if isinstance(exc, OSError):
                raise ConnectionError(f"cannot reach Redis at {self.address}: {exc}") from exc
            raise
        self._connection = connection
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.kwargs.get("ssl_ca_certs"))
        if self.kwargs.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def close(self) -> None:
        if self._connection is not None and not self._connection.closed:
            self._connection.fail(ConnectionError("Redis lane closed"))
        self._connection = None
