"""OpenTelemetry spans at every hop kit owns, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

The trace context travels as it always did, in `kit.tracing.traceparent` and the W3C `traceparent`
header, gRPC metadata and event headers; with tracing on, each hop also records a span whose id is
the one it passes on, so the spans of one request link up across processes:

- `server_span` for work received (an HTTP request in kit.metrics.Observe, a gRPC call in kit.grpc, an
  event in kit.bus): a child of the caller's traceparent, and the current context while it runs;
- `client_span` for work sent (a gRPC call, a service-to-service HTTP request, an event published by
  the outbox relay): a child of the current context, whose traceparent is what goes out (`outgoing`);
- with `setup(..., statements=True)` (every service, through kit.app), each PostgreSQL statement and
  Redis command made while a server span is current: OpenTelemetry's instrumentations of asyncpg and
  redis-py, children of the span `server_span` also makes OpenTelemetry's current one. Never the root
  of a trace of their own: the outbox relay's polls, the readiness checks and the jobs would each make
  a trace of one span, by the thousand. Statements are recorded without their parameters. Where
  nothing would be recorded (outside a server span, or in a trace not sampled) the instrumentations
  are told to stand aside (OpenTelemetry's "suppress instrumentation" flag): a span set up only to be
  dropped costs tens of microseconds, more than many statements, and a checkout runs dozens.

Sampling follows `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`; `parentbased_traceidratio`
with `OTEL_TRACES_SAMPLER_ARG=0.01` keeps 1%, as `make run` does: shop.stack), read by the SDK; the
decision travels in the traceparent's flags, so a trace is kept or dropped whole. Spans go out in
batches over OTLP/HTTP (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. http://collector:4318). With tracing off
each hop costs one attribute test.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from random import getrandbits

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, ParentBased, Sampler
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kit import tracing

tracer: Tracer | None = None
"""The process's tracer while tracing is on, else None."""
_provider: TracerProvider | None = None
# Whether the sampler drops every span whose parent is not sampled (the parent-based ones, as
# OTEL_TRACES_SAMPLER configures them): then such work gets no span object at all (`_records`).
_drops_unsampled = False
_standing_aside: Token[Context] | None = None


class _DrawnIds(RandomIdGenerator):
    """The SDK's random ids, except that the root span started right after `new_trace` kept a trace
    takes the id that was drawn and sampled there."""

    def __init__(self) -> None:
        self.drawn = 0

    def generate_trace_id(self) -> int:
        drawn, self.drawn = self.drawn, 0
        return drawn or super().generate_trace_id()


_ids = _DrawnIds()
_PROPAGATOR = TraceContextTextMapPropagator()
# The server span made OpenTelemetry's current one in this context, and how to undo that when it ends.
_current: ContextVar[tuple[Span, Token[Context]] | None] = ContextVar("shop_server_span", default=None)
# The asyncpg instrumentation's constructor carries no annotations.
_STATEMENTS = (AsyncPGInstrumentor(), RedisInstrumentor())  # type: ignore[no-untyped-call]


def setup(
    service: str,
    endpoint: str = "",
    exporter: SpanExporter | SpanProcessor | None = None,
    *,
    statements: bool = False,
) -> None:
    """Turn tracing on for this process when `endpoint` (`Settings.otlp_endpoint`, the OTLP/HTTP
    collector's base URL) is set, or with `exporter` (tests: each span exported as it ends, or handed
    to a processor of the test's own); else leave it off. `statements`: a span for each database
    statement and Redis command too."""
    global tracer, _provider, _standing_aside, _drops_unsampled
    shutdown()
    if isinstance(exporter, SpanProcessor):
        processor: SpanProcessor = exporter
    elif exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The path the SDK itself appends to OTEL_EXPORTER_OTLP_ENDPOINT.
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces"))
    else:
        return
    _provider = TracerProvider(
        resource=Resource.create({"service.name": f"shop-{service}"}), id_generator=_ids
    )
    _provider.add_span_processor(processor)
    tracer = _provider.get_tracer("shop")
    _drops_unsampled = _drops_unsampled_parents(_provider.sampler)
    if statements:
        _trace_statements(processor, _provider.resource)
        # Outside any server span: set where the process starts, so every task it starts inherits it.
        _standing_aside = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))


def _trace_statements(processor: SpanProcessor, resource: Resource) -> None:
    # A provider of their own, exporting through the same processor, whose sampler records a statement
    # only as the child of a sampled span and drops it where it would start a trace.
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF), resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    for instrumentor in _STATEMENTS:
        instrumentor.instrument(tracer_provider=provider)


def _drops_unsampled_parents(sampler: Sampler) -> bool:
    """Asked once: does `sampler` drop a span whose remote parent is not sampled, whatever its ids?"""
    if not isinstance(sampler, ParentBased):
        return False
    parent = NonRecordingSpan(SpanContext(1, 1, is_remote=True, trace_flags=TraceFlags(0)))
    decision = sampler.should_sample(set_span_in_context(parent), 1, "probe").decision
    return decision is Decision.DROP


def _records(parent: str) -> bool:
    """False when a span under `parent` would be dropped unseen: a parent-based sampler and a valid
    parent marked not sampled. The SDK would still build a non-recording span, extract the context
    with its regex and attach it, for the 99 % of requests a 1 % sample leaves out: a quarter of
    svc_product's CPU per cached detail (178 -> 135 µs, perf/README.md "Where issue 15 stands")."""
    return not (_drops_unsampled and tracing.unsampled(parent))


def drops_unsampled() -> bool:
    """Whether the sampler drops, whatever its ids, work whose remote parent is not sampled."""
    return _drops_unsampled


def new_trace(name: str) -> tuple[int, bool]:
    """A new trace's id, and whether the sampler keeps it: then the root span started next (at once,
    with no context) takes that id and is kept; else no span need be started at all.

    For the edge, where most requests start a trace: asking the sampler first costs a fraction of
    starting a span only to drop it. The samplers OTEL_TRACES_SAMPLER names decide on the trace id
    alone, so the span's own sampling decides the same.
    """
    assert _provider is not None, "tracing is off"
    trace_id = getrandbits(128) or 1
    sampled = _provider.sampler.should_sample(None, trace_id, name).decision is Decision.RECORD_AND_SAMPLE
    if sampled:
        _ids.drawn = trace_id
    return trace_id, sampled


def shutdown() -> None:
    """Send the spans still batched and stop: for a process that leaves without running its exit
    handlers (a forked edge worker ends with os._exit)."""
    global tracer, _provider, _standing_aside, _drops_unsampled
    for instrumentor in _STATEMENTS:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    if _standing_aside is not None:
        otel_context.detach(_standing_aside)
        _standing_aside = None
    if _provider is not None:
        _provider.shutdown()
    tracer = _provider = None
    _drops_unsampled = False
    _ids.drawn = 0


def _context(traceparent: str) -> Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def traceparent_of(span: Span) -> str:
    found = span.get_span_context()
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}"


def server_span(name: str, parent: str, kind: SpanKind = SpanKind.SERVER) -> Span | None:
    """Start the span of work received with `parent` (a traceparent, or "" for a new trace) and make it
    the current trace context; None while tracing is off or when the span would not be recorded (the
    caller then carries the context on as it does with tracing off)."""
    if tracer is None or not _records(parent):
        return None
    span = tracer.start_span(name, context=_context(parent), kind=kind)
    tracing.traceparent.set(traceparent_of(span))
    # OpenTelemetry's current span as well, the statements' parent until `finish`; they stand aside
    # where they would not be recorded.
    current = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, not span.is_recording())
    _current.set((span, otel_context.attach(set_span_in_context(span, current))))
    return span


def client_span(name: str, kind: SpanKind = SpanKind.CLIENT, parent: str | None = None) -> Span | None:
    """Start the span of work sent from the current trace context (or `parent`, a traceparent: the
    outbox relay sends events of other requests); None while tracing is off or when the span would not
    be recorded."""
    if tracer is None:
        return None
    context = tracing.traceparent.get() if parent is None else parent
    if not _records(context):
        return None
    return tracer.start_span(name, context=_context(context), kind=kind)


def outgoing(span: Span | None) -> str:
    """The traceparent to send: the client span's, or without one a child of the current context."""
    return traceparent_of(span) if span is not None else tracing.child_traceparent(tracing.traceparent.get())


def handed_on(traceparent: str) -> str:
    """The traceparent to store with work done later for the request that had `traceparent` (an event
    written by a batch): that very context with tracing on, whose relay span becomes its child; else a
    child of it, as every hop was before."""
    return traceparent if tracer is not None else tracing.child_traceparent(traceparent)


def finish(
    span: Span | None,
    *,
    name: str | None = None,
    error: BaseException | None = None,
    failed: bool = False,
    attributes: Mapping[str, str | int] | None = None,
) -> None:
    """End `span` (no-op for None), renamed once its name is known (a route), marked failed by `error`
    (recorded) or `failed` (a 5xx answer, a gRPC error code)."""
    if span is None:
        return
    if name is not None:
        span.update_name(name)
    if attributes:
        span.set_attributes(attributes)
    if error is not None:
        span.record_exception(error)
    if error is not None or failed:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    current = _current.get()
    if current is not None and current[0] is span:
        otel_context.detach(current[1])
        _current.set(None)
