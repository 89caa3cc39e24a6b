"""Step 5 of `edge.proxy` on its general path: the request to a destination and the answer back.

The request goes to the best destination of the route's cluster (`Cluster.order`); an idempotent
request without a body that fails before any answer is sent once more, elsewhere when there is another
destination. The answer streams back to the client as it arrives, with the service's headers less the
edge's own. The fast path (`edge.streaming`) shares the retry decision and the response headers.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.call import Call
from edge.connection import Connection
from edge.errors import BadGateway, EdgeError, GatewayTimeout
from edge.exchange import Exchange
from edge.headers import RESPONSE_OWNED, connection_tokens
from edge.spans import Spans
from edge.upstream import Cluster

# Safe to send twice: the same request again has the same effect (RFC 9110, 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Forwarder:
    def __init__(
        self, clusters: Mapping[str, Cluster], response_timeout: float, retries: int, spans: Spans | None
    ) -> None:
        self.clusters = clusters
        self._timeout = response_timeout
        self._retries = retries
        self._spans = spans

    def timeout(self, call: Call) -> float:
        """How long the service may stay silent in this call's exchange."""
        route = call.route
        assert route is not None
        return route.response_timeout or self._timeout

    def head(self, call: Call, conn: Connection) -> bytes:
        """The request head for `conn`'s destination, naming it as the Host when the client named none;
        with tracing on, it starts the attempt's span (edge.spans)."""
        call.upstream = conn.pool
        head = call.head if call.has_host else call.head + b"host: " + conn.pool.authority + b"\r\n\r\n"
        if self._spans is not None and call.span is not None:
            return self._spans.attempt(call, head)
        return head

    def may_retry(self, call: Call, conn: Connection, error: EdgeError, *, reused: bool) -> bool:
        """After a failed attempt (released here): whether to try again, and where not to."""
        conn.release()
        Spans.attempted(call, error.message)
        pool = conn.pool
        # A pooled connection the service closed as we picked it is nobody's failure.
        stale = reused and not conn.received_any and isinstance(error, BadGateway)
        if not stale:
            pool.failed()
        if call.retries is None:
            ex = call.ex
            has_body = ex.chunked or bool(ex.content_length)
            call.retries = self._retries if not has_body and ex.method in IDEMPOTENT else 0
        if call.retries and isinstance(error, BadGateway):
            call.retries -= 1
            call.avoid = None if stale else pool
            call.order = None
            if call.span is not None:
                call.span.add_event("retry", {"server.address": pool.url, "error": error.message})
            return True
        return False

    async def send(self, call: Call) -> Connection:
        """Send the request and wait for the response head; the connection is the caller's to release.

        A timeout is not retried (it would double the wait and the load on a service that is already
        slow).
        """
        ex, route = call.ex, call.route
        assert route is not None
        cluster = self.clusters[route.cluster]
        has_body = ex.chunked or bool(ex.content_length)
        timeout = self.timeout(call)
        while True:
            # The first attempt goes where the fast path looked (balancing moves on at every look).
            order, call.order = call.order or cluster.order(call.avoid), None
            conn, reused = await cluster.connect(route.connect_timeout, order)
            try:
                conn.send_head(
                    self.head(call, conn),
                    head_only=ex.method == "HEAD",
                    body_follows=has_body,
                    timeout=timeout,
                )
                if has_body:
                    await self._send_body(ex, conn)
                await conn.read_head()
                conn.pool.succeeded()
                return conn
            except (BadGateway, GatewayTimeout) as error:
                if self.may_retry(call, conn, error, reused=reused):
                    continue
                raise
            except BaseException:
                conn.release()
                raise

    @staticmethod
    async def _send_body(ex: Exchange, conn: Connection) -> None:
        while data := await ex.receive():
            if conn.head_done:
                # The service answered before reading everything (e.g. its own 413); stop sending.
                return
            conn.write(b"%x\r\n%b\r\n" % (len(data), data) if ex.chunked else data)
            await conn.drain()
        if ex.chunked:
            conn.write(b"0\r\n\r\n")
        conn.request_sent = True

    @staticmethod
    def response_headers(call: Call, conn: Connection) -> bytes:
        """The service's response headers less the edge's own, plus the request id and CORS lines."""
        dropped = RESPONSE_OWNED
        if conn.connection is not None:
            dropped = dropped | connection_tokens(conn.connection)
        parts: list[bytes] = []
        for name, value in conn.headers:
            if name not in dropped:
                parts += (name, b": ", value, b"\r\n")
        parts += (b"x-request-id: ", call.request_id, b"\r\n", call.cors)
        return b"".join(parts)

    @staticmethod
    async def stream_back(ex: Exchange, conn: Connection, headers: bytes) -> None:
        bodiless = ex.method == "HEAD" or conn.status in (204, 304)
        if conn.complete and not bodiless:
            # The whole answer is already here (the common case): one write, with an exact length.
            ex.respond(conn.status, headers, conn.take_body())
            return
        # Bodiless answers keep the service's Content-Length: it describes what a GET would return.
        ex.start(conn.status, headers, conn.content_length)
        while data := await conn.read_body():
            ex.write(data)
            await ex.drain()
        ex.finish()
