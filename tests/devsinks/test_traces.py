"""The dev trace sink: spans exported as the SDK exports them are listed by trace, with their attributes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from devsinks import traces
from tests.support import serve


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(traces.make_app()) as client:
        yield client


async def test_a_statement_span_is_kept_with_what_it_ran(sink: httpx.AsyncClient) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-order"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("POST /api/orders/checkout", kind=SpanKind.SERVER) as request,
        tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT) as statement,
    ):
        statement.set_attributes(
            {"db.system": "postgresql", "db.statement": "INSERT INTO orders ...", "server.port": 5432}
        )
        statement.set_attributes({"ok": True, "ratio": 0.5, "tags": ["a", "b"]})
        statement.set_status(Status(StatusCode.ERROR))
    exported = encode_spans(exporter.get_finished_spans()).SerializeToString()
    answer = await sink.post(
        "/v1/traces", content=exported, headers={"content-type": "application/x-protobuf"}
    )
    assert answer.status_code == 200

    trace_id = f"{request.get_span_context().trace_id:032x}"
    [listed] = (await sink.get("/api/traces")).json()
    assert listed == {"traceId": trace_id, "services": ["shop-order"], "spans": 2}
    first, second = (await sink.get(f"/api/traces/{trace_id}")).json()
    assert (first["name"], first["kind"], first["failed"]) == ("POST /api/orders/checkout", "server", False)
    assert second["parentSpanId"] == first["spanId"] and second["failed"]
    attributes = second["attributes"]
    assert {k: attributes[k] for k in ("db.system", "db.statement", "server.port", "ok", "ratio")} == {
        "db.system": "postgresql",
        "db.statement": "INSERT INTO orders ...",
        "server.port": 5432,
        "ok": True,
        "ratio": 0.5,
    }
    assert '"a"' in attributes["tags"] and '"b"' in attributes["tags"]


async def test_what_is_not_an_export_is_refused(sink: httpx.AsyncClient) -> None:
    assert (await sink.post("/v1/traces", content=b"\xff\xff\xff")).status_code == 400
    assert (await sink.get(f"/api/traces/{'0' * 32}")).status_code == 404
