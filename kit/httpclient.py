"""A small HTTP/1.1 client on asyncio streams with keep-alive connections, for calls between services.

Why not httpx: measured in svc_order, one httpx GET of the catalog cost ~1.8 ms of CPU (its connection
pool bookkeeping, and httpcore retrying `import trio` on every request); this costs ~0.1 ms. Used by
svc_order (the catalog) and svc_product (stock from svc_inventory). It does only
what a call to one of our own services needs: one host, requests with a content-length body, answers
with content-length or chunked bodies, keep-alive; a request that failed on a reused connection (the
server closed it meanwhile) is sent once more on a new one when it is idempotent (GET). Every request
carries the caller's trace (`traceparent`, a child of the current one) and request id, as gRPC calls
and events do; a client standing for someone outside (`propagate=False`: the load generators) sends
neither, as a browser would, so the edge starts the trace and decides whether it is sampled.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from urllib.parse import urlsplit

from kit import telemetry, tracing

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.I)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.I)
MAX_HEAD = 64 * 1024


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.1 as expected."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read its answer: (status, body, whether the connection may be reused)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or len(head) > MAX_HEAD:
            raise ProtocolError("not an HTTP/1.x answer")
        status = int(head[9:12])
        if _CHUNKED.search(head):
            body = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")  # the empty trailer
        else:
            length = _LENGTH.search(head)
            body = bytearray(await self.reader.readexactly(int(length.group(1)))) if length else bytearray()
        return status, bytes(body), _CLOSE.search(head) is None

    def close(self) -> None:
        self.writer.close()


class Client:
    """Keep-alive connections to one service (`base_url`); at most `size` at once, others wait; a
    request (waiting for a connection included) fails after `timeout` seconds."""

    def __init__(
        self, base_url: str, size: int = 32, timeout: float = 2.0, *, propagate: bool = True
    ) -> None:
        self.timeout = timeout
        self.propagate = propagate
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = (parts.netloc or self.host).encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)

    async def request(
        self, method: str, path: str, headers: bytes = b"", body: bytes = b""
    ) -> tuple[int, bytes]:
        """(status, body) of one request; `headers` are complete `name: value\\r\\n` lines.

        Raises OSError (including ConnectionError) when the service cannot be reached or answers badly,
        TimeoutError past the client's timeout.
        """
        span, context = None, b""
        if self.propagate:
            span = telemetry.client_span(f"{method} {self.host}:{self.port}")
            context = b"traceparent: %s\r\n" % telemetry.outgoing(span).encode()
            if rid := tracing.request_id.get():
                context += b"x-request-id: %s\r\n" % rid.encode()
        request = b"%s %s HTTP/1.1\r\nhost: %s\r\n%s%scontent-length: %d\r\n\r\n%s" % (
            method.encode(),
            path.encode(),
            self.host_header,
            context,
            headers,
            len(body),
            body,
        )
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                reused = self._idle.pop() if self._idle else None
                try:
                    answer = await self._send(reused or await self._connect(), request)
                except ConnectionError:
                    if reused is None or method != "GET":
                        raise
                    # The server closed an idle connection under us: once more on a fresh one.
                    answer = await self._send(await self._connect(), request)
        except BaseException as exc:
            telemetry.finish(span, error=exc)
            raise
        telemetry.finish(span, failed=answer[0] >= 500, attributes={"http.response.status_code": answer[0]})
        return answer

    async def _send(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        """One exchange; the connection goes back to the pool after it, or is closed if it failed."""
        try:
            status, answer, keep = await connection.exchange(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            connection.close()
            raise ConnectionError(f"{self.host}:{self.port}: {exc!r}") from None
        except BaseException:
            connection.close()  # cancelled or timed out mid-exchange: its state is unknown
            raise
        if keep:
            self._idle.append(connection)
        else:
            connection.close()
        return status, answer

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            with contextlib.suppress(Exception):
                await connection.writer.wait_closed()
