"""kit.telemetry: with tracing on, every hop kit owns records a span, linked to the caller's."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import Iterator

import asyncpg
import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kit import settings, telemetry, tracing
from kit.app import Deps
from kit.bus import Broker, declare_topology, publish
from kit.grpc import GrpcServer, channel
from kit.httpclient import Client
from kit.metrics import Observe
from kit.relay import OutboxRelay
from tests.kit import test_bus
from tests.kit.conftest import KIT_DB
from tests.kit.test_bus import AMQP_URL, Verified, _consumer, running
from tests.kit.test_grpc import SERVICE, _register
from tests.kit.test_httpclient import plain, server
from tests.support import eventually, recorded_spans

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
# test_bus's `broker` fixture, here too.
shared_broker = test_bus.broker


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def statements() -> Iterator[InMemorySpanExporter]:
    """Spans as a service records them (kit.app): with its statements and Redis commands."""
    with recorded_spans(statements=True) as exporter:
        yield exporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def traced_request(traceparent: str) -> tuple[str, bytes, str]:
    """GET through `Observe` with `traceparent`, whose handler calls another service: the handler's
    trace context, the head that service got, and its port."""
    heads: list[bytes] = []

    async def record(head: bytes, writer: asyncio.StreamWriter) -> None:
        heads.append(head)
        await plain(b"{}")(head, writer)

    async with server(record) as (url, _):
        downstream = Client(url)

        async def handler(request: Request) -> Response:
            await downstream.request("GET", "/stock")
            return PlainTextResponse(tracing.traceparent.get())

        app = Starlette(routes=[Route("/traced/{item}", handler)], middleware=[Middleware(Observe)])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answer = await client.get("/traced/7", headers={"traceparent": traceparent})
        await downstream.close()
    return answer.text, heads[0], url.rsplit(":", 1)[1]


async def test_a_request_and_the_call_it_makes_are_spans_of_the_callers_trace(
    spans: InMemorySpanExporter,
) -> None:
    context, head, port = await traced_request(f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    found = by_name(spans)
    served, called = found["GET /traced/{item}"], found[f"GET 127.0.0.1:{port}"]
    assert served.kind is SpanKind.SERVER and called.kind is SpanKind.CLIENT
    assert f"{served.context.trace_id:032x}" == CALLER_TRACE == f"{called.context.trace_id:032x}"
    assert served.parent is not None and f"{served.parent.span_id:016x}" == CALLER_SPAN
    assert called.parent is not None and called.parent.span_id == served.context.span_id
    # The handler ran in the server span's context; the downstream service was told the client span's.
    assert context == f"00-{CALLER_TRACE}-{served.context.span_id:016x}-01"
    assert f"traceparent: 00-{CALLER_TRACE}-{called.context.span_id:016x}-01".encode() in head
    assert served.attributes is not None and served.attributes["http.response.status_code"] == 200


@pytest.mark.parametrize(("sampler", "recorded"), [("parentbased_always_on", False), ("always_on", True)])
async def test_a_request_the_caller_did_not_sample_stays_in_its_trace_recorded_as_the_sampler_says(
    monkeypatch: pytest.MonkeyPatch, sampler: str, recorded: bool
) -> None:
    # A parent-based sampler (the default, and `make run`'s) drops it: no span is even started. One
    # that ignores the parent's flag records it, and then the trace goes on sampled.
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    with recorded_spans() as spans:
        context, head, _ = await traced_request(f"00-{CALLER_TRACE}-{CALLER_SPAN}-00")
    assert len(spans.get_finished_spans()) == (2 if recorded else 0)
    flags = "01" if recorded else "00"
    sent = head.split(b"traceparent: ", 1)[1].split(b"\r\n", 1)[0].decode()
    for traceparent in (context, sent):
        assert traceparent.startswith(f"00-{CALLER_TRACE}-") and traceparent.endswith(f"-{flags}")
        assert CALLER_SPAN not in traceparent  # a hop of its own


async def test_a_grpc_call_is_a_client_span_and_a_server_span_linked(spans: InMemorySpanExporter) -> None:
    config = dataclasses.replace(settings.load("inventory"), grpc_port=0)
    grpc_server = GrpcServer("test", _register, grace=0.1)
    job = asyncio.create_task(grpc_server(Deps(config, None, None, None)))  # type: ignore[arg-type]
    port = await grpc_server.started()
    tracing.traceparent.set(f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    async with channel(f"127.0.0.1:{port}") as opened:
        await opened.unary_unary(f"/{SERVICE}/Trace")(b"")
        with pytest.raises(grpc.aio.AioRpcError):
            await opened.unary_unary(f"/{SERVICE}/Missing")(b"")
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)

    async def both_client_spans_ended() -> bool:
        return {f"/{SERVICE}/Trace", f"/{SERVICE}/Missing"} <= set(by_name(spans))

    await eventually(both_client_spans_ended)
    found = by_name(spans)
    called, served = found[f"/{SERVICE}/Trace"], found["Trace"]
    assert called.kind is SpanKind.CLIENT and served.kind is SpanKind.SERVER
    assert f"{called.parent.span_id:016x}" == CALLER_SPAN if called.parent else False
    assert served.parent is not None and served.parent.span_id == called.context.span_id
    assert served.status.is_ok and called.status.is_ok
    assert not found["Missing"].status.is_ok and not found[f"/{SERVICE}/Missing"].status.is_ok


async def test_an_event_is_published_and_consumed_in_the_trace_of_the_request_that_wrote_it(
    spans: InMemorySpanExporter, pool: asyncpg.Pool, shared_broker: Broker
) -> None:
    broker = shared_broker
    handled: list[str] = []

    async def on_verified(conn: asyncpg.Connection, event: Verified) -> None:
        handled.append(tracing.traceparent.get())

    consumer, service = _consumer(pool, broker, on_verified)
    await declare_topology(AMQP_URL, {service: ["user.verified"]})
    request = telemetry.server_span("POST /api/auth/verify-email", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    async with pool.acquire() as conn, conn.transaction():
        await publish(conn, Verified(user_id=uuid.uuid4(), email="traced@x.io"))
    telemetry.finish(request)
    async with running(OutboxRelay(pool, broker, KIT_DB).run(), consumer.run()):
        await eventually(lambda: asyncio.sleep(0, handled))
    found = by_name(spans)
    sent, received = found["user.verified publish"], found[f"{service}.user.verified process"]
    assert sent.kind is SpanKind.PRODUCER and received.kind is SpanKind.CONSUMER
    assert request is not None and sent.parent is not None and received.parent is not None
    assert sent.parent.span_id == request.get_span_context().span_id
    assert received.parent.span_id == sent.context.span_id
    assert {f"{s.context.trace_id:032x}" for s in (sent, received)} == {CALLER_TRACE}
    assert handled == [f"00-{CALLER_TRACE}-{received.context.span_id:016x}-01"]


async def test_statements_and_redis_commands_of_traced_work_are_its_spans_and_never_traces_alone(
    statements: InMemorySpanExporter, pool: asyncpg.Pool
) -> None:
    redis = Redis.from_url(os.environ["REDIS_URL"])

    async def handler(request: Request) -> Response:
        await pool.fetchval("SELECT $1::int + 1", 41)
        await redis.get("kit:telemetry:nothing")
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/work", handler)], middleware=[Middleware(Observe)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/work", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
        # Work no request started (a job, the outbox relay's poll): no span, not even a trace of one.
        await pool.fetchval("SELECT 2")
        await redis.get("kit:telemetry:nothing")
        # Work in a trace the caller did not sample: nothing either.
        await client.get("/work", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"})
    await redis.aclose()
    assert len(statements.get_finished_spans()) == 3
    found = by_name(statements)
    served, select, get = found["GET /work"], found["SELECT"], found["GET"]
    for span in (select, get):
        assert span.kind is SpanKind.CLIENT and span.parent is not None
        assert span.parent.span_id == served.context.span_id
        assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    assert select.attributes is not None and select.attributes["db.statement"] == "SELECT $1::int + 1"
    assert "db.statement.parameters" not in select.attributes


def test_a_new_trace_the_sampler_keeps_is_the_one_the_next_root_span_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How the edge starts traces (edge.spans): the sampler asked first, a span only for a kept one.
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    decided = set()
    with recorded_spans() as spans:
        assert telemetry.tracer is not None
        for _ in range(100):
            trace_id, kept = telemetry.new_trace("GET /x")
            assert kept is (trace_id & (2**64 - 1) < 2**63)  # the ratio's rule, on that id
            if kept:
                span = telemetry.tracer.start_span("GET /x")
                assert span.get_span_context().trace_id == trace_id and span.is_recording()
                span.end()
            decided.add(kept)
        # The id is handed over once: a root started later gets one of its own.
        later = telemetry.tracer.start_span("GET /y")
        later.end()
    assert decided == {True, False}
    ids = [span.context.trace_id for span in spans.get_finished_spans()]
    assert len(set(ids)) == len(ids)
