"""Helpers for the edge tests, all on real sockets on 127.0.0.1.

A small upstream that shows what reached it, the edge's config pointed at it, tokens, and a raw
HTTP/1.1 client for what httpx will not send (pipelining, malformed requests).

The upstream answers every path; the query string picks a behaviour:

    (none)          echo its name, method, path, query, headers, body and connection number as JSON
    slow=<s>        echo after sleeping s seconds
    stream=<n>      n bytes of body, chunked, in 16 KiB pieces
    close=mid       announce 100000 bytes, send 1000, close
    reset=1         close without answering
    status=<code>   echo with that status
    cors=1          echo with Access-Control-Allow-Origin: * of its own
    hop=1           echo with hop-by-hop headers and an X-Request-ID of its own in the response
    bye=1           echo, then close the connection (as a service's keep-alive timeout would)
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httptools
import httpx
import jwt
import orjson

from edge.config import EdgeConfig, load_config
from edge.server import Edge
from kit import settings
from tests.processes import free_port

# Long enough for any answer in these tests, short enough that a hang fails fast.
WAIT = 5.0
CLUSTERS = ("auth", "user", "order", "product", "payment", "inventory", "discount", "notify")


@dataclass
class UpstreamRequest:
    method: str = ""
    target: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    keep_alive: bool = True


class _RequestParser:
    """httptools callbacks collecting complete requests, and counting body bytes as they arrive."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.parser = httptools.HttpRequestParser(self)
        self.current = UpstreamRequest()
        self.done: list[UpstreamRequest] = []

    def on_message_begin(self) -> None:
        self.current = UpstreamRequest()

    def on_url(self, url: bytes) -> None:
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.current.method = self.parser.get_method().decode()
        self.current.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.current.body += body
        self.upstream.body_bytes_seen += len(body)

    def on_message_complete(self) -> None:
        self.done.append(self.current)


class Upstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.connections = 0
        self.requests: list[UpstreamRequest] = []
        self.body_bytes_seen = 0
        self._server: asyncio.Server | None = None
        self.port = 0
        # What /health/ready answers: 200 while ready, else 503.
        self.ready = True
        # Hang up on every connection without reading it (a broken destination that still accepts).
        self.hang_up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        if self.hang_up:
            writer.close()
            return
        parser = _RequestParser(self)
        try:
            while data := await reader.read(65536):
                parser.parser.feed_data(data)
                while parser.done:
                    request = parser.done.pop(0)
                    self.requests.append(request)
                    if not await self._answer(request, number, writer):
                        return
        except (ConnectionError, httptools.HttpParserError):
            pass
        except asyncio.CancelledError:
            # A slow answer still pending at teardown; ending quietly spares Python 3.11's stream
            # callback from logging the cancellation as an error.
            pass
        finally:
            writer.close()

    async def _answer(self, request: UpstreamRequest, number: int, writer: asyncio.StreamWriter) -> bool:
        path, _, query = request.target.decode().partition("?")
        params = {key: values[0] for key, values in parse_qs(query).items()}
        if path == "/health/ready":
            params["status"] = "200" if self.ready else "503"
        if "reset" in params:
            return False
        if "close" in params:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
            return False
        if "stream" in params:
            total = int(params["stream"])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
            sent = 0
            while sent < total:
                piece = bytes([65 + (sent // 16384) % 26]) * min(16384, total - sent)
                writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                sent += len(piece)
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return request.keep_alive
        if "slow" in params:
            await asyncio.sleep(float(params["slow"]))
        body = orjson.dumps(
            {
                "upstream": self.name,
                "method": request.method,
                "path": path,
                "query": query,
                "headers": request.headers,
                "body": request.body.decode("latin-1"),
                "connection": number,
            }
        )
        status = int(params.get("status", "200"))
        extra = b""
        if "cors" in params:
            extra += b"Access-Control-Allow-Origin: *\r\n"
        if "hop" in params:
            extra = (
                b"Connection: keep-alive, X-Secret-Hop\r\nKeep-Alive: timeout=5\r\nX-Secret-Hop: 1\r\n"
                b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Request-ID: from-upstream\r\n"
                b"X-Kept: yes\r\n"
            )
        head = b"HTTP/1.1 %d Whatever\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            status,
            len(body),
        )
        writer.write(head + extra + b"\r\n" + (b"" if request.method == "HEAD" else body))
        await writer.drain()
        return request.keep_alive and "bye" not in params


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawClient:
    """A plain socket speaking HTTP/1.1 by hand, reading responses in order with httptools."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._parser = httptools.HttpResponseParser(self)
        self._responses: list[RawResponse] = []
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        self._responses.append(RawResponse(status, self._headers, bytes(self._body)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> RawResponse:
        async with asyncio.timeout(WAIT):
            while not self._responses:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed before a whole response")
                self._parser.feed_data(data)
        return self._responses.pop(0)

    async def head_response(self) -> RawResponse:
        """The answer to a HEAD: a head alone (httptools cannot be told that no body follows)."""
        data = b""
        async with asyncio.timeout(WAIT):
            while b"\r\n\r\n" not in data:
                more = await self.reader.read(65536)
                if not more:
                    raise ConnectionError("closed before a whole head")
                data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        assert rest == b"", "bytes after the head of a HEAD answer"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        self._parser = httptools.HttpResponseParser(self)
        return RawResponse(int(status_line.split()[1]), headers, b"")

    async def closed(self) -> bool:
        """True when the edge closes the connection (after anything still in flight)."""
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionError:
                    return True
                if not data:
                    return True

    async def close(self) -> None:
        self.writer.close()


def make_token(claims_override: dict[str, object] | None = None, *, secret: str | None = None) -> str:
    edge_settings = settings.load("edge", {})
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "3f1c1e9a-7f38-4a53-9a49-0d6c1f5f2b11",
        "email": "user@shop.local",
        "name": "A User",
        "roles": ["User", "Seller"],
        "iat": now,
        "exp": now + 3600,
        "iss": edge_settings.jwt_issuer,
        "aud": edge_settings.jwt_audience,
    }
    claims.update(claims_override or {})
    return jwt.encode(claims, secret or edge_settings.jwt_secret.reveal(), algorithm="HS256")


# Limits no test reaches unless it sets its own: most tests are about other things.
UNLIMITED = {
    "RATE_LIMIT_USER_PER_MINUTE": "1000000000",
    "RATE_LIMIT_IP_PER_HOUR": "1000000000",
    "EDGE_RATE_LIMIT_LOGIN": "off",
    "EDGE_RATE_LIMIT_MAIL": "off",
}


def edge_config(destinations: dict[str, str], **env: str) -> EdgeConfig:
    """The edge's config as `python -m edge` builds it, from variables: `destinations` maps a cluster
    (or "*" for the rest) to its EDGE_CLUSTER_<NAME> value. Limits are out of reach, active health
    checks and the docs' reading of /openapi.json off (they would add requests a test counts), Redis is
    the test run's."""
    environment = {
        "EDGE_PORT": "0",
        "EDGE_ADMIN_PORT": "0",
        "EDGE_RESPONSE_TIMEOUT": "0.5",
        "EDGE_SHUTDOWN_GRACE": "2",
        "EDGE_HEALTH_INTERVAL": "0",
        "EDGE_DOCS": "false",
        "REDIS_URL": os.environ["REDIS_URL"],
        **UNLIMITED,
        **env,
    }
    for name in CLUSTERS:
        environment[f"EDGE_CLUSTER_{name.upper()}"] = destinations.get(name) or destinations["*"]
    return load_config(environment)


def dead_url() -> str:
    """A loopback URL nothing listens on (a port just released by the kernel)."""
    return f"http://127.0.0.1:{free_port()}"


async def scrape(edge: Edge) -> str:
    """The edge worker's `/metrics`, from its admin port."""
    assert edge.admin is not None
    async with httpx.AsyncClient() as admin:
        return (await admin.get(f"http://127.0.0.1:{edge.admin.port}/metrics")).text
