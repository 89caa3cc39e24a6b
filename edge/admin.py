"""The edge's admin listener: `/metrics` (and the health endpoints again) on a port of its own.

The public port (5010) answers `/health/live` and `/health/ready` for the load balancer in front, but
never `/metrics`: what the edge counts is for the operators, on `EDGE_ADMIN_PORT` (9010), which is
not published (compose) and reachable only from the monitoring namespace (deploy/k8s). Each worker
process listens on the admin port plus its index (9010, 9011, ...): a scrape sees one worker's own
figures, complete and never mixed, and Prometheus sums the workers like any other processes
(`sum without (instance)`). Not on the hot path: plain asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

Answer = tuple[int, bytes, bytes]
"""(status, content-type header line, body), as the proxy's own endpoints return them."""

_REASONS = {200: b"OK", 404: b"Not Found", 503: b"Service Unavailable"}
_NOT_FOUND: Answer = (
    404,
    b"content-type: application/json\r\n",
    b'{"error":"NotFound","message":"","details":[]}',
)


class AdminServer:
    def __init__(self, endpoints: dict[str, Callable[[], Answer]]) -> None:
        self._endpoints = endpoints
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                await reader.readuntil(b"\r\n\r\n")
            parts = request_line.split(b" ")
            path = parts[1].split(b"?", 1)[0].decode("latin-1") if len(parts) == 3 else ""
            endpoint = self._endpoints.get(path) if parts[0] in (b"GET", b"HEAD") else None
            status, content_type, body = endpoint() if endpoint else _NOT_FOUND
            writer.write(
                b"HTTP/1.1 %d %s\r\n%scontent-length: %d\r\nconnection: close\r\n\r\n"
                % (status, _REASONS.get(status, b""), content_type, len(body))
            )
            if parts[0] == b"GET":
                writer.write(body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
