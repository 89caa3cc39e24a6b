"""The edge's span of each routed request (OpenTelemetry), while tracing is on (kit.telemetry).

One server span per request that matched a route, from the moment it was routed until its answer was
out, refused ones (401, 429) included: a child of the client's `traceparent` when it sent a valid one,
else the root of a new trace. Its own context is the traceparent the service receives, so the
service's span is its child and a request is one trace from the edge on. Sampling is the SDK's, set by
the same `OTEL_TRACES_SAMPLER` variables as the services': the decision travels in the traceparent's
flags, so a trace the edge drops is dropped by every service after it, and one it keeps is kept whole.

Attributes: the method, route pattern, path, client address and cluster; once answered the status and
the destination of the last attempt (a retry is an event). A 5xx marks the span failed.

Each attempt to send a sampled request upstream is a client span of its own, the request's child: its
destination, and its outcome (a failed attempt that is retried ends failed, with why). Its context is
the traceparent that attempt's head carries (patched in place: the head is built once, before the
first attempt), so the service's span is the attempt's child. A request whose trace is not sampled
makes no span at all (for a new trace the sampler is asked first: kit.telemetry.new_trace): the
service is told a context of its own in that trace, marked not sampled, and it pays nothing more.

While tracing is off the proxy holds no `Spans`, and a request pays one test of None.
"""

from __future__ import annotations

from random import getrandbits

from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)

from edge.call import Call
from edge.headers import sane_traceparent
from kit import telemetry

_FAILED = Status(StatusCode.ERROR)


class Spans:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start(self, call: Call, path: str, parent: bytes | None) -> bytes:
        """Start `call`'s span (a child of `parent`, the client's traceparent, when it is valid) and
        return the traceparent to send upstream: the span's own. A request whose trace is not sampled
        gets no span (`call.span` stays None), only a context of its own in that trace."""
        route, ex = call.route, call.ex
        assert route is not None
        name = ex.method + " " + route.pattern
        context = None
        if parent is not None and sane_traceparent(parent):
            flags = int(parent[53:55], 16)
            if not flags & 1 and telemetry.drops_unsampled():
                return b"00-%s-%016x-%02x" % (parent[3:35], getrandbits(64) or 1, flags)
            # Read straight from the checked bytes: the SDK's propagator parses with a regex of its own.
            remote = SpanContext(
                int(parent[3:35], 16),
                int(parent[36:52], 16),
                is_remote=True,
                trace_flags=TraceFlags(flags),
            )
            context = set_span_in_context(NonRecordingSpan(remote))
        else:
            trace_id, sampled = telemetry.new_trace(name)
            if not sampled:
                return b"00-%032x-%016x-00" % (trace_id, getrandbits(64) or 1)
        span = call.span = self._tracer.start_span(
            name,
            context,
            SpanKind.SERVER,
            {
                "http.request.method": ex.method,
                "http.route": route.pattern,
                "url.path": path,
                "client.address": ex.peer,
                "edge.cluster": route.cluster,
            },
        )
        sent = span.get_span_context()
        return b"00-%032x-%016x-%02x" % (sent.trace_id, sent.span_id, sent.trace_flags)

    def attempt(self, call: Call, head: bytes) -> bytes:
        """Start the span of an attempt to send `call` to `call.upstream` and return `head` (the attempt's
        request head) telling the service that span as its parent; `head` as it is for an unsampled
        request. The previous attempt's span, if any, was ended by `attempted`."""
        span, pool = call.span, call.upstream
        assert span is not None and pool is not None and call.route is not None
        if not span.is_recording():
            return head
        attempt = call.attempt = self._tracer.start_span(
            "upstream " + call.route.cluster,
            set_span_in_context(span),
            SpanKind.CLIENT,
            {"server.address": pool.host, "server.port": pool.port},
        )
        sent = attempt.get_span_context()
        at = call.traceparent_at
        traceparent = b"00-%032x-%016x-%02x" % (sent.trace_id, sent.span_id, sent.trace_flags)
        return head[:at] + traceparent + head[at + len(traceparent) :]

    @staticmethod
    def attempted(call: Call, error: str | None = None, status: int = 0) -> None:
        """End the current attempt's span, if any: failed with `error`, or answered with `status`."""
        attempt = call.attempt
        if attempt is None:
            return
        call.attempt = None
        if status:
            attempt.set_attribute("http.response.status_code", status)
        if error is not None or status >= 500:
            attempt.set_status(Status(StatusCode.ERROR, error))
        attempt.end()

    @staticmethod
    def finish(call: Call) -> None:
        """End `call`'s span (and its last attempt's) with what its answer was and where it came from."""
        span = call.span
        assert span is not None
        Spans.attempted(call, status=call.ex.status if call.upstream is not None else 0)
        if span.is_recording():
            status = call.ex.status
            span.set_attribute("http.response.status_code", status)
            pool = call.upstream
            if pool is not None:
                span.set_attribute("server.address", pool.host)
                span.set_attribute("server.port", pool.port)
            if status >= 500:
                span.set_status(_FAILED)
        span.end()
