"""The dev trace sink: an OTLP/HTTP receiver (`POST /v1/traces`, protobuf) that keeps spans in memory
and lists them by trace, so a developer (or an end-to-end test) can see what one request did.

    python -m devsinks.traces   # HTTP on TRACESINK_PORT (4318, OTLP/HTTP's own port)
    curl -s localhost:4318/api/traces               # the newest traces: id, services, span count
    curl -s localhost:4318/api/traces/<trace id>    # its spans, oldest first, with their attributes

The newest `CAPACITY` traces are kept. Dev only: no auth; use a real collector (Jaeger, Tempo, the
OpenTelemetry Collector) anywhere else, with the same OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

from collections import OrderedDict

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit import logs, settings
from kit.http import JSON, Model

CAPACITY = 1_000
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
Scalar = str | int | float | bool


class Span(Model):
    service: str
    name: str
    kind: str
    span_id: str
    parent_span_id: str
    start_unix_nano: int
    end_unix_nano: int
    failed: bool
    attributes: dict[str, Scalar]


class Trace(Model):
    trace_id: str
    services: list[str]
    spans: int


def _scalar(value: AnyValue) -> Scalar:
    kind = value.WhichOneof("value")
    found = (
        getattr(value, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else None
    )
    # Arrays, maps and bytes are rare in spans: shown as protobuf's text for a person to read.
    return found if found is not None else str(value).strip()


class Traces:
    """Spans by trace id, the least recently touched trace dropped past `CAPACITY`."""

    def __init__(self) -> None:
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace_id = span.trace_id.hex()
                    self._traces.setdefault(trace_id, []).append(
                        Span(
                            service=service,
                            name=span.name,
                            kind=_KINDS.get(span.kind, "unspecified"),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            start_unix_nano=span.start_time_unix_nano,
                            end_unix_nano=span.end_time_unix_nano,
                            failed=span.status.code == 2,
                            attributes={a.key: _scalar(a.value) for a in span.attributes},
                        )
                    )
                    self._traces.move_to_end(trace_id)
        while len(self._traces) > CAPACITY:
            self._traces.popitem(last=False)

    def summaries(self) -> list[Trace]:
        return [
            Trace(trace_id=trace_id, services=sorted({s.service for s in spans}), spans=len(spans))
            for trace_id, spans in reversed(self._traces.items())
        ]

    def spans(self, trace_id: str) -> list[Span] | None:
        found = self._traces.get(trace_id)
        return sorted(found, key=lambda s: s.start_unix_nano) if found is not None else None


def _traces(request: Request) -> Traces:
    return request.app.state.traces  # type: ignore[no-any-return]


async def receive(request: Request) -> Response:
    try:
        export = ExportTraceServiceRequest.FromString(await request.body())
    except DecodeError:
        return JSON({"error": "ValidationError", "message": "Not an OTLP trace export", "details": []}, 400)
    _traces(request).add(export)
    return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")


async def list_traces(request: Request) -> Response:
    return JSON(_traces(request).summaries())


async def get_trace(request: Request) -> Response:
    spans = _traces(request).spans(request.path_params["trace_id"])
    if spans is None:
        return JSON({"error": "NotFound", "message": "No such trace", "details": []}, 404)
    return JSON(spans)


async def live(request: Request) -> Response:
    return JSON({"status": "ok"})


def make_app(config: settings.Settings | None = None) -> Starlette:
    config = config or settings.load("tracesink")
    logs.setup("tracesink", config.log_level)
    app = Starlette(
        routes=[
            Route("/health/live", live),
            Route("/v1/traces", receive, methods=["POST"]),
            Route("/api/traces", list_traces, methods=["GET"]),
            Route("/api/traces/{trace_id}", get_trace, methods=["GET"]),
        ]
    )
    app.state.traces = Traces()
    return app


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.traces:app", "tracesink")
