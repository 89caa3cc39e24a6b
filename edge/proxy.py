"""The edge's request handler: route, authenticate, rewrite headers, forward, stream the answer back.

Header policy, both ways: hop-by-hop headers (and those a `Connection` header names) never cross the
edge; the identity headers (`X-User-*`) are the edge's alone and are set only from a verified token;
`X-Request-ID` is the client's when sane, else new, and goes upstream and onto every response;
`traceparent` is kept when valid, else started; `X-Forwarded-For` gains the peer, and
`X-Forwarded-Proto` says http. `Host` passes through.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import unquote

import orjson

from edge.errors import BadGateway, BadRequest, EdgeError, NotFound, TokenRejected, Unauthorized
from edge.jwt import Claims, InvalidToken, Verifier
from edge.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge.metrics import Metrics
from edge.protocol import Exchange
from edge.routes import READS, Route, RouteTable
from edge.upstream import Cluster, Connection

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
IDENTITY = frozenset({b"x-user-id", b"x-user-roles", b"x-user-email"})
# Request headers the edge writes itself; whatever the client sent under these names is replaced.
REQUEST_OWNED = (
    HOP_BY_HOP
    | IDENTITY
    | {
        b"x-request-id",
        b"traceparent",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"content-length",
        b"expect",
    }
)
RESPONSE_OWNED = HOP_BY_HOP | {b"content-length", b"x-request-id"}

# Safe to send twice when a pooled connection turned out dead before any byte of an answer.
RETRYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

JSON = b"content-type: application/json\r\n"
REQUEST_ID = re.compile(rb"[\x20-\x7e]{1,128}")
# W3C trace context: version (not ff), trace id and parent id (not all zeros), flags.
TRACEPARENT = re.compile(rb"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def _sane_traceparent(value: bytes) -> bool:
    if TRACEPARENT.match(value) is None:
        return False
    # Version 00 is exactly 55 bytes; later versions may append fields after a dash.
    return len(value) == 55 or (not value.startswith(b"00") and value[55:56] == b"-")


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(token.strip().lower() for token in value.split(b","))


def route_path(target: bytes) -> str:
    """The path to route on: percent-decoded, refused if it is not a path or has dot segments.

    Deciding on the decoded path means `/api/users/me%2Fx/avatar` is not the public avatar route, and
    refusing `.`/`..` means no service can resolve a path into a route other than the one we checked.
    """
    if not target.startswith(b"/"):
        raise BadRequest("The request target must be a path.")
    path = target.split(b"?", 1)[0].decode("latin-1")
    if "%" in path:
        path = unquote(path)
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        raise BadRequest("Dot segments are not allowed in the path.")
    return path


class Proxy:
    """The `Handler` of every client exchange."""

    def __init__(
        self,
        routes: RouteTable,
        clusters: Mapping[str, Cluster],
        verifier: Verifier,
        metrics: Metrics,
        response_timeout: float,
    ) -> None:
        self._routes = routes
        self._clusters = clusters
        self._verifier = verifier
        self._metrics = metrics
        self._timeout = response_timeout
        self._local: dict[str, Callable[[], tuple[bytes, bytes]]] = {
            "/health/live": self._live,
            "/health/ready": self._ready,
            "/metrics": self._render_metrics,
        }

    async def __call__(self, ex: Exchange) -> None:
        started = time.perf_counter()
        cluster = "edge"
        request_id = b""
        try:
            # One pass over the client's headers: keep what goes upstream, pick out what we act on.
            kept: list[tuple[bytes, bytes]] = []
            authorization = traceparent = forwarded_for = connection = None
            for name, value in ex.headers:
                if name in REQUEST_OWNED:
                    if name == b"x-request-id":
                        request_id = request_id or value
                    elif name == b"traceparent":
                        traceparent = value
                    elif name == b"x-forwarded-for":
                        forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
                    elif name == b"connection":
                        connection = value
                    continue
                if name == b"authorization" and authorization is None:
                    authorization = value
                kept.append((name, value))
            if not REQUEST_ID.fullmatch(request_id):
                request_id = os.urandom(16).hex().encode()

            if ex.error is not None:
                raise ex.error
            path = route_path(ex.target)
            local = self._local.get(path) if ex.method in READS else None
            if local is not None:
                content_type, body = local()
                ex.respond(200, content_type + b"x-request-id: " + request_id + b"\r\n", body)
            else:
                route = self._routes.match(ex.method, path)
                if route is None:
                    cluster = "none"
                    raise NotFound()
                cluster = route.cluster
                claims = self._authenticate(authorization, route)
                if connection is not None:
                    dropped = _connection_tokens(connection)
                    kept = [(name, value) for name, value in kept if name not in dropped]
                head = self._request_head(ex, kept, claims, request_id, traceparent, forwarded_for)
                await self._forward(ex, self._clusters[cluster], head, request_id)
        except EdgeError as error:
            self._answer_error(ex, error, request_id)
        except Exception:
            log.exception("edge failed on %s %r", ex.method, ex.target)
            self._answer_error(ex, EdgeError(), request_id)
        self._metrics.observe(cluster, ex.status, time.perf_counter() - started)

    # -- the edge's own answers --------------------------------------------------------------------

    def _live(self) -> tuple[bytes, bytes]:
        return JSON, b'{"status":"ok"}'

    def _ready(self) -> tuple[bytes, bytes]:
        clusters = {name: cluster.destinations for name, cluster in self._clusters.items()}
        return JSON, orjson.dumps({"status": "ok", "clusters": clusters})

    def _render_metrics(self) -> tuple[bytes, bytes]:
        return b"content-type: " + METRICS_CONTENT_TYPE + b"\r\n", self._metrics.render()

    def _answer_error(self, ex: Exchange, error: EdgeError, request_id: bytes) -> None:
        if ex.response_started:
            # Too late for a status: cutting the connection is how the client learns the body is short.
            log.warning("edge aborted %s %r mid-response: %s", ex.method, ex.target, error.message)
            ex.abort()
            return
        headers = JSON + error.headers + b"x-request-id: " + (request_id or os.urandom(16).hex().encode())
        ex.respond(error.status, headers + b"\r\n", error.body())

    # -- identity ----------------------------------------------------------------------------------

    def _authenticate(self, authorization: bytes | None, route: Route) -> Claims | None:
        """The caller's claims, None for an anonymous call to a public route; raises 401 otherwise."""
        if authorization is None:
            if route.public:
                return None
            raise Unauthorized()
        scheme, _, token = authorization.strip().partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            raise TokenRejected("The Authorization header must be a Bearer token.")
        try:
            return self._verifier.verify(token.decode("latin-1"))
        except InvalidToken as exc:
            raise TokenRejected(f"The bearer token is not valid: {exc}.") from None

    # -- forwarding --------------------------------------------------------------------------------

    def _request_head(
        self,
        ex: Exchange,
        kept: list[tuple[bytes, bytes]],
        claims: Claims | None,
        request_id: bytes,
        traceparent: bytes | None,
        forwarded_for: bytes | None,
    ) -> list[bytes]:
        """The upstream request head, without its final blank line (the Host may still be missing)."""
        parts = [ex.method.encode(), b" ", ex.target, b" HTTP/1.1\r\n"]
        for name, value in kept:
            parts += (name, b": ", value, b"\r\n")
        if claims is not None:
            parts += (
                b"x-user-id: ",
                claims.sub.encode(),
                b"\r\nx-user-roles: ",
                ",".join(claims.roles).encode(),
                b"\r\nx-user-email: ",
                claims.email.encode(),
                b"\r\n",
            )
        if traceparent is None or not _sane_traceparent(traceparent):
            ids = os.urandom(24).hex().encode()
            traceparent = b"00-" + ids[:32] + b"-" + ids[32:] + b"-01"
        peer = ex.peer.encode()
        parts += (
            b"x-request-id: ",
            request_id,
            b"\r\ntraceparent: ",
            traceparent,
            b"\r\nx-forwarded-for: ",
            peer if forwarded_for is None else forwarded_for + b", " + peer,
            b"\r\nx-forwarded-proto: http\r\n",
        )
        if ex.chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        elif ex.content_length is not None:
            parts.append(b"content-length: %d\r\n" % ex.content_length)
        return parts

    async def _forward(self, ex: Exchange, cluster: Cluster, head: list[bytes], request_id: bytes) -> None:
        conn = await self._send(ex, cluster, head)
        try:
            await self._stream_back(ex, conn, request_id)
        finally:
            conn.release()

    async def _send(self, ex: Exchange, cluster: Cluster, head: list[bytes]) -> Connection:
        """Send the request and wait for the response head; the connection is the caller's to release."""
        has_body = ex.chunked or bool(ex.content_length)
        retry = not has_body and ex.method in RETRYABLE
        has_host = any(name == b"host" for name, _ in ex.headers)
        while True:
            conn, reused = await cluster.connect()
            try:
                host = b"" if has_host else b"host: " + conn.pool.authority + b"\r\n"
                conn.send_head(
                    b"".join(head) + host + b"\r\n",
                    head_only=ex.method == "HEAD",
                    body_follows=has_body,
                    timeout=self._timeout,
                )
                if has_body:
                    await self._send_body(ex, conn)
                await conn.read_head()
                return conn
            except BadGateway:
                conn.release()
                # A pooled connection the service closed as we picked it: nothing reached the service.
                if retry and reused and not conn.received_any:
                    retry = False
                    continue
                raise
            except BaseException:
                conn.release()
                raise

    async def _send_body(self, ex: Exchange, conn: Connection) -> None:
        while data := await ex.receive():
            if conn.head_done:
                # The service answered before reading everything (e.g. its own 413); stop sending.
                return
            conn.write(b"%x\r\n%b\r\n" % (len(data), data) if ex.chunked else data)
            await conn.drain()
        if ex.chunked:
            conn.write(b"0\r\n\r\n")
        conn.request_sent = True

    async def _stream_back(self, ex: Exchange, conn: Connection, request_id: bytes) -> None:
        dropped = RESPONSE_OWNED
        parts: list[bytes] = []
        for name, value in conn.headers:
            if name == b"connection":
                dropped = dropped | _connection_tokens(value)
        for name, value in conn.headers:
            if name not in dropped:
                parts += (name, b": ", value, b"\r\n")
        parts += (b"x-request-id: ", request_id, b"\r\n")
        headers = b"".join(parts)

        bodiless = ex.method == "HEAD" or conn.status in (204, 304)
        if conn.complete and not bodiless:
            # The whole answer is already here (the common case): one write, with an exact length.
            ex.respond(conn.status, headers, await conn.read_body())
            return
        # Bodiless answers keep the service's Content-Length: it describes what a GET would return.
        ex.start(conn.status, headers, conn.content_length)
        while data := await conn.read_body():
            ex.write(data)
            await ex.drain()
        ex.finish()
