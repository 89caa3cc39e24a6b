"""The edge's spans (edge.spans): with tracing on, a routed request is a server span in the client's
trace, or the root of a new one; each attempt to send it upstream is a client span, its child, and the
service is told that attempt's span as its parent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import Upstream, edge_config
from tests.edge.test_headers import upstream_headers
from tests.support import recorded_spans

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans("edge") as exporter:
        yield exporter


@pytest.fixture
async def traced(
    spans: InMemorySpanExporter, edge: Edge, start_edge: StartEdge
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an edge started while tracing is on (the session's edge runs without)."""
    gateway = await start_edge(edge.config)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=5) as client:
        yield client


def request_and_attempt(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ReadableSpan]:
    """The spans of one forwarded request: its own (a server span) and its one attempt's (a client span,
    ended first)."""
    attempt, request = exporter.get_finished_spans()
    assert request.kind is SpanKind.SERVER and attempt.kind is SpanKind.CLIENT
    assert attempt.parent is not None and attempt.parent.span_id == request.context.span_id
    assert attempt.context.trace_id == request.context.trace_id
    return request, attempt


def traceparent_of(span: ReadableSpan) -> str:
    found = span.context
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}"


def sampled(flags: str) -> bool:
    return bool(int(flags, 16) & 1)


def told_upstream(answer: httpx.Response) -> str:
    [traceparent] = upstream_headers(answer)["traceparent"]
    return traceparent


async def test_a_request_is_a_span_of_the_clients_trace_and_the_parent_of_the_services(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, upstream: Upstream
) -> None:
    answer = await traced.get(
        "/api/products/42", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    )
    assert answer.status_code == 200
    span, attempt = request_and_attempt(spans)
    assert span.name == "GET /api/products/**"
    assert f"{span.context.trace_id:032x}" == CLIENT_TRACE
    assert span.parent is not None and f"{span.parent.span_id:016x}" == CLIENT_SPAN
    assert told_upstream(answer) == f"00-{CLIENT_TRACE}-{attempt.context.span_id:016x}-01"
    assert attempt.name == "upstream product" and attempt.status.is_ok
    assert attempt.attributes == {
        "server.address": "127.0.0.1",
        "server.port": upstream.port,
        "http.response.status_code": 200,
    }
    assert span.attributes == {
        "http.request.method": "GET",
        "http.route": "/api/products/**",
        "url.path": "/api/products/42",
        "client.address": "127.0.0.1",
        "edge.cluster": "product",
        "http.response.status_code": 200,
        "server.address": "127.0.0.1",
        "server.port": upstream.port,
    }
    assert span.status.is_ok
    assert span.resource.attributes["service.name"] == "shop-edge"


async def test_without_a_valid_traceparent_the_edge_starts_the_trace(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    for sent in ({}, {"traceparent": f"00-{'0' * 32}-{CLIENT_SPAN}-01"}):
        answer = await traced.get("/api/products", headers=sent)
        span, attempt = request_and_attempt(spans)
        assert span.parent is None
        assert told_upstream(answer) == traceparent_of(attempt)
        assert span.context.trace_flags.sampled
        spans.clear()


async def test_a_5xx_fails_the_span_and_a_refused_request_is_recorded_too(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    assert (await traced.get("/api/products", params={"status": "503"})).status_code == 503
    assert (await traced.get("/api/orders")).status_code == 401
    attempt, failed, refused = spans.get_finished_spans()
    assert not attempt.status.is_ok and attempt.parent is not None
    assert attempt.parent.span_id == failed.context.span_id
    assert not failed.status.is_ok and failed.attributes is not None
    assert failed.attributes["http.response.status_code"] == 503
    # Refused at the edge: never sent anywhere, and the edge working as meant.
    assert refused.status.is_ok and refused.attributes is not None
    assert refused.attributes["http.response.status_code"] == 401
    assert "server.address" not in refused.attributes


async def test_the_edges_own_answers_are_no_spans(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    assert (await traced.get("/health/ready")).status_code == 200
    assert (await traced.get("/nowhere")).status_code == 404
    assert spans.get_finished_spans() == ()


async def test_a_trace_the_client_did_not_sample_stays_unsampled_downstream(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    answer = await traced.get("/api/products", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"})
    assert spans.get_finished_spans() == ()
    trace_id, span_id, flags = told_upstream(answer).split("-")[1:]
    assert trace_id == CLIENT_TRACE and span_id != CLIENT_SPAN and not sampled(flags)


async def told_with_sampler(
    monkeypatch: pytest.MonkeyPatch, start_edge: StartEdge, edge: Edge, sampler: str, argument: str, gets: int
) -> tuple[list[list[str]], tuple[ReadableSpan, ...]]:
    """`gets` GETs through an edge traced with this sampler: the traceparent the service was told of
    each, split at its dashes, and the spans the edge recorded."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    with recorded_spans("edge") as exporter:
        gateway = await start_edge(edge.config)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
            told = [told_upstream(await client.get("/api/products")).split("-") for _ in range(gets)]
    return told, exporter.get_finished_spans()


async def test_the_services_sampler_settings_decide_at_the_edge(
    monkeypatch: pytest.MonkeyPatch, edge: Edge, start_edge: StartEdge
) -> None:
    [told], recorded = await told_with_sampler(monkeypatch, start_edge, edge, "traceidratio", "0", 1)
    assert recorded == ()
    assert not sampled(told[3])


async def test_with_a_ratio_the_edge_keeps_that_share_of_new_traces_whole_and_drops_the_rest_unseen(
    monkeypatch: pytest.MonkeyPatch, edge: Edge, start_edge: StartEdge
) -> None:
    # The edge asks the sampler before it starts a span (kit.telemetry.new_trace): a kept trace must
    # be the very one the service is told, and decided as the ratio says of its id.
    told, recorded = await told_with_sampler(
        monkeypatch, start_edge, edge, "parentbased_traceidratio", "0.5", 40
    )
    kept = {trace_id for _, trace_id, _, flags in told if sampled(flags)}
    assert 5 <= len(kept) <= 35  # 40 draws at 1/2 (outside: about one run in 10^6)
    assert {f"{span.context.trace_id:032x}" for span in recorded} == kept
    for _, trace_id, _, flags in told:
        assert sampled(flags) is (int(trace_id, 16) & (2**64 - 1) < 2**63)


async def test_each_attempt_is_a_span_and_the_service_hears_of_the_last(
    spans: InMemorySpanExporter, start_edge: StartEdge
) -> None:
    first, second = Upstream("first"), Upstream("second")
    await first.start()
    await second.start()
    first.hang_up = second.hang_up = True
    try:
        gateway = await start_edge(edge_config({"*": f"{first.url},{second.url}"}))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=5) as client:
            # Both hang up: one retry elsewhere, then 502; each attempt failed, with why.
            assert (await client.get("/api/products")).status_code == 502
    finally:
        await first.stop()
        await second.stop()
    *attempts, request = spans.get_finished_spans()
    assert [a.kind for a in attempts] == [SpanKind.CLIENT, SpanKind.CLIENT]
    assert {a.attributes["server.port"] for a in attempts if a.attributes} == {first.port, second.port}
    assert all(not a.status.is_ok and a.status.description for a in attempts)
    assert all(a.parent is not None and a.parent.span_id == request.context.span_id for a in attempts)
    assert [e.name for e in request.events] == ["retry"]
