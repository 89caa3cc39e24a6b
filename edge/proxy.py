"""The edge's request handler: route, authenticate, limit, rewrite headers, forward, stream back.

The steps of one request, in order:

1. one pass over the client's headers: keep what goes upstream, pick out what the edge acts on;
2. the edge's own endpoints (the `pages` it is given: `/health/live` and `/health/ready` from
   edge.readiness, `/openapi.json` and `/docs` from edge.docs; `/metrics` is on the admin port,
   edge/admin.py) and CORS preflights are answered here;
3. route (with tracing on, the request's span starts here: edge.spans); verify the bearer token (a
   bad one is refused, but only after step 4, so a flood of forged tokens is limited like any
   anonymous traffic);
4. rate limits: per user with a valid token, else per client IP, plus the route's own limit;
5. forward to a destination of the route's cluster, retrying an idempotent request once elsewhere if
   it failed before any answer; stream the answer back (edge.forwarding).

Most requests take a fast path with no task, coroutine or future: steps 1-4 decide from memory, a
request without a body goes out on an idle pooled connection, and the answer is written from the
upstream connection's callback once it is complete. Anything else (a body to stream, a caller only
Redis can judge, a new connection, a retry, a big answer) continues in a coroutine from where the fast
path stopped. One `Call` (edge.call) carries the request's state across both. The fast path's step 5
is `edge.streaming`'s, the general path's `edge.forwarding`'s; both come back here to answer an error,
record the request or retry it.

The header policy it applies is `edge.headers`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from opentelemetry.trace import Tracer

from edge.accesslog import AccessLog
from edge.call import Call
from edge.cors import Cors
from edge.errors import (
    EdgeError,
    Forbidden,
    NotFound,
    RateLimited,
    TokenRejected,
    Unauthorized,
)
from edge.exchange import Exchange, task_cancelled
from edge.forwarding import Forwarder
from edge.headers import (
    INTERESTING,
    KIND_AUTHORIZATION,
    KIND_CONNECTION,
    KIND_FORWARDED_FOR,
    KIND_HOST,
    KIND_ORIGIN,
    KIND_PREFLIGHT,
    KIND_REQUEST_ID,
    KIND_SKIP,
    KIND_TRACEPARENT,
    SANE_REQUEST_ID,
    RequestIds,
    connection_tokens,
    new_traceparent,
    route_path,
    sane_traceparent,
)
from edge.jwt import Claims, InvalidToken, Verifier
from edge.metrics import Metrics
from edge.peers import TrustedProxies
from edge.ratelimit import Limiter, PolicyState
from edge.routes import READS, Route, RouteTable
from edge.spans import Spans
from edge.streaming import Streamer
from edge.upstream import Cluster

log = logging.getLogger(__name__)

JSON = b"content-type: application/json\r\n"


class Proxy:
    """The `Handler` of every client exchange."""

    def __init__(
        self,
        routes: RouteTable,
        clusters: Mapping[str, Cluster],
        verifier: Verifier,
        metrics: Metrics,
        response_timeout: float,
        *,
        limiter: Limiter,
        user_limit: str,
        ip_limit: str,
        cors: Cors,
        peers: TrustedProxies,
        retries: int = 1,
        access_log: AccessLog | None = None,
        pages: Mapping[str, Callable[[], tuple[int, bytes, bytes]]] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._routes = routes
        self._clusters = clusters
        self._spans = Spans(tracer) if tracer is not None else None
        self._forward = Forwarder(clusters, response_timeout, retries, self._spans)
        self._streamer = Streamer(self, self._forward)
        self._verifier = verifier
        self._metrics = metrics
        self._limiter = limiter
        self._user_limit = limiter.state(user_limit)
        self._ip_limit = limiter.state(ip_limit)
        self._cors = cors
        self._peers = peers
        self._access_log = access_log
        self._request_id = RequestIds()
        # What the edge answers itself, from memory: its health (edge.readiness), the API's document
        # and docs page (edge.docs).
        self._local = dict(pages or {})

    def __call__(self, ex: Exchange) -> Awaitable[None] | None:
        """Answer `ex` (a `Handler`): synchronously when it can, from upstream callbacks for a request
        without a body to a destination with an idle connection (the common case: no task, no
        future), else through the returned coroutine."""
        call = Call(ex)
        try:
            pending = self._front(call)
            if call.answered:
                self.end(call)
                return None
            route = call.route
            assert route is not None
            if pending is None and not (ex.chunked or ex.content_length):
                order = call.order = self._clusters[route.cluster].order()
                conn = order[0].take_idle()
                if conn is not None:
                    self._streamer.send_watching(call, conn)
                    return None
            return self.finish(call, pending)
        except Exception as exc:
            self.answer_exception(call, exc)
        self.end(call)
        return None

    def end(self, call: Call) -> None:
        """Book-keeping once the answer is out, then let the connection move on."""
        self.record(call)
        call.ex.done()

    def _front(self, call: Call) -> list[PolicyState] | None:
        """Steps 1 to 4, as far as they go without waiting. Returns the limits only Redis can decide."""
        ex = call.ex
        # Step 1: one pass over the client's headers; those kept go straight into the upstream head's
        # lines, four pieces each (name, ": ", value, CRLF).
        kept: list[bytes] = [ex.method.encode(), b" ", ex.target, b" HTTP/1.1\r\n"]
        authorization = traceparent = forwarded_for = connection = origin = None
        preflight = has_host = False
        request_id = b""
        for name, value in ex.headers:
            kind = INTERESTING.get(name)
            if kind is None:
                kept += (name, b": ", value, b"\r\n")
                continue
            if kind == KIND_SKIP:
                continue
            if kind == KIND_REQUEST_ID:
                request_id = request_id or value
            elif kind == KIND_TRACEPARENT:
                traceparent = value
            elif kind == KIND_FORWARDED_FOR:
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            elif kind == KIND_CONNECTION:
                connection = value
                continue
            elif kind == KIND_AUTHORIZATION:
                authorization = authorization or value
            elif kind == KIND_ORIGIN:
                origin = value
            elif kind == KIND_PREFLIGHT:
                preflight = True
            elif kind == KIND_HOST:
                has_host = True
            if kind >= KIND_AUTHORIZATION:
                kept += (name, b": ", value, b"\r\n")
        call.request_id = (
            request_id if request_id and SANE_REQUEST_ID.fullmatch(request_id) else self._request_id()
        )
        if origin is not None and self._cors.enabled:
            call.cors = self._cors.response_headers(origin)

        if ex.error is not None:
            raise ex.error
        path = route_path(ex.target)
        # Step 2: what the edge answers itself.
        local = self._local.get(path) if ex.method in READS else None
        if local is not None:
            status, content_type, body = local()
            ex.respond(status, content_type + b"x-request-id: " + call.request_id + b"\r\n", body)
            call.answered = True
            return None
        if preflight and origin is not None and ex.method == "OPTIONS" and self._cors.enabled:
            self._answer_preflight(ex, origin, call.request_id)
            call.answered = True
            return None
        # Step 3: route and authenticate.
        route = call.route = self._routes.match(ex.method, path)
        if route is None:
            raise NotFound()
        if self._spans is not None:
            traceparent = self._spans.start(call, path, traceparent)
        rejected: EdgeError | None = None
        try:
            call.claims = self._authenticate(authorization, route)
        except (Unauthorized, TokenRejected) as error:
            rejected = error
        # Step 4: rate limits, from memory when it can tell (the common case).
        if call.claims is not None:
            states, key = [self._user_limit], call.claims.sub
        else:
            states, key = [self._ip_limit], self._peers.client(ex.peer, forwarded_for)
        if route.limit is not None:
            states.append(self._limiter.state(route.limit.name))
        call.key = key
        pending = None
        for i, state in enumerate(states):
            wait = self._limiter.check(state, key)
            if wait is None:
                pending = states[i:]
                break
            self._refuse(state, wait)
        if rejected is not None:
            if pending is None:
                raise rejected
            call.rejected = rejected
        if connection is not None:
            dropped = connection_tokens(connection)
            kept = kept[:4] + [
                piece
                for at in range(4, len(kept), 4)
                if kept[at] not in dropped
                for piece in kept[at : at + 4]
            ]
        head = self._request_head(ex, kept, call.claims, call.request_id, traceparent, forwarded_for)
        if call.span is not None:
            # Each attempt patches its own span's context in there (edge.spans).
            call.traceparent_at = head.rindex(b"\r\ntraceparent: ") + 15
        call.head = head + b"\r\n" if has_host else head
        call.has_host = has_host
        return pending

    async def finish(self, call: Call, pending: list[PolicyState] | None) -> None:
        """The rest of steps 4 and 5 for whatever could not be done without waiting."""
        ex = call.ex
        try:
            for state in pending or ():
                wait = self._limiter.check(state, call.key)
                self._refuse(
                    state, wait if wait is not None else await self._limiter.acquire(state, call.key)
                )
            if call.rejected is not None:
                raise call.rejected
            assert call.route is not None
            conn = await self._forward.send(call)
            try:
                await Forwarder.stream_back(ex, conn, Forwarder.response_headers(call, conn))
            finally:
                conn.release()
        except (Exception, asyncio.CancelledError) as exc:
            self.answer_exception(call, exc)
        finally:
            self.record(call)

    def record(self, call: Call) -> None:
        """Book-keeping once the answer is out. Its failure is logged and changes nothing for the client:
        raised, it would close the connection its answer said stays open."""
        try:
            elapsed = time.perf_counter() - call.started
            self._metrics.observe(call.route, call.ex.status, elapsed)
            if self._access_log is not None:
                self._access_log.record(call.ex, call.route, elapsed, call.request_id, call.claims)
            if call.span is not None:
                Spans.finish(call)
        except Exception:
            log.exception("edge failed to record %s %r", call.ex.method, call.ex.target)

    # -- the edge's own answers ------------------------------------------------------------------

    def _answer_preflight(self, ex: Exchange, origin: bytes, request_id: bytes) -> None:
        allowed = self._cors.preflight(origin)
        if allowed is None:
            raise Forbidden("This origin may not call the API.")
        ex.respond(204, allowed + b"x-request-id: " + request_id + b"\r\n", b"")

    def answer_exception(self, call: Call, exc: BaseException) -> None:
        """Answer what stopped `call`: its EdgeError, else (a bug, logged) a 500. A CancelledError is
        answered only when it escaped from something awaited; the task's own cancellation (the client
        went away, the edge stops) is raised again."""
        if isinstance(exc, asyncio.CancelledError) and task_cancelled():
            raise exc
        if isinstance(exc, EdgeError):
            error = exc
        else:
            log.error("edge failed on %s %r", call.ex.method, call.ex.target, exc_info=exc)
            error = EdgeError()
        self.answer_error(call.ex, error, call.request_id, call.cors)

    def answer_error(self, ex: Exchange, error: EdgeError, request_id: bytes, cors: bytes) -> None:
        """Answer `error` with the API's error body, or cut the connection once an answer has begun."""
        if ex.response_started:
            # Too late for a status: cutting the connection is how the client learns the body is short.
            log.warning("edge aborted %s %r mid-response: %s", ex.method, ex.target, error.message)
            ex.abort()
            return
        headers = JSON + error.headers + cors + b"x-request-id: " + (request_id or self._request_id())
        ex.respond(error.status, headers + b"\r\n", error.body())

    # -- identity and limits -----------------------------------------------------------------------

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

    @staticmethod
    def _refuse(state: PolicyState, wait: float) -> None:
        if wait:
            policy = state.policy
            raise RateLimited(policy.header, policy.name.encode(), wait)

    # -- the upstream request ----------------------------------------------------------------------

    def _request_head(
        self,
        ex: Exchange,
        parts: list[bytes],
        claims: Claims | None,
        request_id: bytes,
        traceparent: bytes | None,
        forwarded_for: bytes | None,
    ) -> bytes:
        """The upstream request head from its request line and kept header lines (`parts`), without its
        final blank line (the Host may still be missing)."""
        if claims is not None:
            parts.append(claims.headers)
        if traceparent is None or not sane_traceparent(traceparent):
            traceparent = new_traceparent()
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
        return b"".join(parts)
