"""Request ids, trace context, per-route RED metrics and the last resort for errors, as one ASGI middleware.

It sits outside Starlette's exception handling, so every error that no handler took leaves in the
contract's shape with an `X-Request-ID`, and is counted: a dependency's failure as a 503 (a read that
met a cut database connection is run once more first, `kit.outage`), a client that hung up mid-body as
499, anything else as a 500.
"""

from __future__ import annotations

import functools
import logging
import time
from random import random
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import outage, telemetry, tracing
from kit.errors import ShopError
from kit.http import encode

log = logging.getLogger(__name__)
access = logging.getLogger("access")

requests = Counter("shop_http_requests_total", "HTTP requests", ["method", "route", "status"])
latency = Histogram(
    "shop_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
_INTERNAL = encode(ShopError("An unexpected error occurred").body())


class _RouteMetrics:
    """The labelled children of one (method, route): `labels()` hashes and locks on every call, so each
    is looked up once per process and kept here (no more of them than the metrics hold anyway)."""

    __slots__ = ("latency", "method", "path", "requests")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.latency = latency.labels(method, path)
        self.requests: dict[int, Any] = {}

    def done(self, status: int, seconds: float) -> None:
        self.latency.observe(seconds)
        counter = self.requests.get(status)
        if counter is None:
            counter = self.requests[status] = requests.labels(self.method, self.path, str(status))
        counter.inc()


class Observe:
    """`access_log`: the share of requests logged (logger `access`: method, route template, status,
    duration; the formatter adds the request id and trace), 0 for none."""

    def __init__(self, app: ASGIApp, access_log: float = 0.0) -> None:
        self.app = app
        self._metrics: dict[tuple[str, str], _RouteMetrics] = {}
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass over the raw header list instead of building a dict of every header per request.
        given_id = parent = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value
            elif name == b"traceparent":
                parent = value
        rid = tracing.sane_request_id(given_id.decode("latin-1"))
        tracing.request_id.set(rid)
        incoming = parent.decode("latin-1")
        span = telemetry.server_span(scope["method"], incoming) if telemetry.tracer is not None else None
        if span is None:
            tracing.traceparent.set(tracing.child_traceparent(incoming))
        rid_header = (b"x-request-id", rid.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        began = time.perf_counter()
        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started or not outage.worth_retrying(scope, exc):
                    raise
                await outage.fresh_connections(scope)
                await self.app(scope, outage.no_body, send_with_id)
        except ClientDisconnect:
            # The client left mid-body: nothing to answer, nothing broken. 499 as nginx counts it, so it
            # is told apart from our failures (and nobody can inflate the 5xx figures by hanging up).
            status = 499
        except Exception as exc:
            if started:
                log.exception("error after the response started", extra={"path": scope.get("path")})
            elif outage.is_dependency_failure(exc):
                head, body = outage.unavailable(scope, exc)
                await send_with_id(head)
                await send(body)
            else:
                log.exception("unhandled error", extra={"path": scope.get("path")})
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": _INTERNAL})
        finally:
            elapsed = time.perf_counter() - began
            route: Any = scope.get("route")
            key = (scope["method"], getattr(route, "path", "unmatched"))
            metrics = self._metrics.get(key)
            if metrics is None:
                metrics = self._metrics[key] = _RouteMetrics(*key)
            metrics.done(status, elapsed)
            if span is not None:
                telemetry.finish(
                    span,
                    name=f"{key[0]} {key[1]}",
                    failed=status >= 500,
                    attributes={"http.route": key[1], "http.response.status_code": status},
                )
            if self._access_log and random() < self._access_log:
                access.info(
                    "request",
                    extra={
                        "method": key[0],
                        "route": key[1],
                        "status": status,
                        "ms": round(elapsed * 1000, 3),
                    },
                )


@functools.cache
def _registry() -> CollectorRegistry:
    """The figures a scrape shows: this process's, or with several workers (kit.serve.share_metrics)
    every worker's summed from their files."""
    if values.ValueClass is values.MutexValue:  # as prometheus_client chose at import: one process
        return REGISTRY
    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed)  # type: ignore[no-untyped-call]
    return summed


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
