"""A service that fails on cue, at the byte level: what a process killed mid-exchange looks like to the edge.

Each connection it accepts is handled by the next of the `Fault`s it was given (`FaultyUpstream.expect`),
or by `answer` once they run out. A fault can take several exchanges of its connection (answer, then
reset on the next request: a pooled connection whose process died between requests). Resets are real
ones (SO_LINGER 0: the kernel sends RST and drops what is unsent), as the kernel does for a killed
process's sockets that still held unread bytes.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import httptools

# What a fault does with one accepted connection.
Fault = Callable[["Peer"], Awaitable[None]]


class Peer:
    """The service's side of one accepted connection, read request by request."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[dict[str, str]]
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._parser = httptools.HttpRequestParser(self)
        self._head_done = False
        self._complete = False
        self.body = bytearray()
        self.headers: dict[str, str] = {}
        self._seen = seen

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._head_done = self._complete = False
        self.body = bytearray()
        self.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._seen.append(self.headers)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self._complete = True

    async def _read_until(self, done: Callable[[], bool]) -> None:
        while not done():
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the edge closed the connection")
            self._parser.feed_data(data)

    async def read_head(self) -> None:
        """Read until the request's head is in (some of its body may have come with it)."""
        self._head_done = False
        await self._read_until(lambda: self._head_done)

    async def read_body(self, at_least: int) -> None:
        await self._read_until(lambda: len(self.body) >= at_least or self._complete)

    async def read_request(self) -> None:
        self._complete = False
        await self._read_until(lambda: self._complete)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, status: int = 200) -> None:
        """The rest of the current request, then a small JSON answer on a connection kept alive."""
        await self._read_until(lambda: self._complete)
        body = b'{"answered":true,"body":%d}' % len(self.body)
        await self.send(
            b"HTTP/1.1 %d Whatever\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
            % (status, len(body), body)
        )

    def reset(self) -> None:
        """Abort the connection with RST, unsent bytes dropped, as the kernel does for a killed process."""
        sock: socket.socket = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def hang_up(self) -> None:
        """Close gracefully (FIN) with nothing more said."""
        self.writer.close()


async def answer(peer: Peer) -> None:
    """A healthy service: answers every request on the connection until the edge closes it."""
    while True:
        try:
            await peer.read_head()
        except ConnectionError:
            return
        await peer.answer()


class FaultyUpstream:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections = 0
        # Requests whose head reached the service (whatever became of them).
        self.requests: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def expect(self, *faults: Fault) -> None:
        """The next connections are handled by `faults`, in order; later ones by `answer`."""
        self._faults = list(faults)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop listening, as a killed process's port refuses; the connections it holds go on."""
        assert self._server is not None
        self._server.close()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self.stop()
        for task in self._handlers:
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        fault = self._faults.pop(0) if self._faults else answer
        peer = Peer(reader, writer, self.requests)
        try:
            await fault(peer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            if not writer.transport.is_closing():
                writer.close()
