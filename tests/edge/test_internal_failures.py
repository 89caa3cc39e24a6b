"""What the client sees when something inside the edge fails rather than a service: a tracing plug-in
that raises, on the path that answers from an upstream connection's callback or after the answer; a
CancelledError that escapes from something the edge awaited. The client always gets an answer in the
contract's shape, and a connection its answer said stays open stays open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind

from edge.server import Edge
from kit import telemetry
from tests.edge.conftest import StartEdge
from tests.edge.faulty import FaultyUpstream, Peer
from tests.edge.support import RawClient, RawResponse, Upstream, edge_config


class FailingSpans(SpanProcessor):
    """A tracing plug-in with a bug: once `armed`, it raises as a span of `kind` ends, and so does the
    edge's `span.end()` with it (the SDK calls its processors without a guard)."""

    def __init__(self, kind: SpanKind) -> None:
        self.kind = kind
        self.armed = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.armed and span.kind is self.kind:
            raise RuntimeError("a tracing plug-in failed")


@pytest.fixture
def failing_spans(request: pytest.FixtureRequest) -> Iterator[FailingSpans]:
    """Tracing on (for the edges started meanwhile) through a provider with a plug-in failing on the
    spans of the kind the test is parametrized with."""
    processor = FailingSpans(request.param)
    telemetry.setup("edge", exporter=processor)
    yield processor
    telemetry.shutdown()


def get(path: str) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: shop\r\n\r\n"


def contract_error(answer: RawResponse, status: int, kind: str) -> None:
    assert answer.status == status, answer.body
    assert answer.json() == {"error": kind, "message": answer.json()["message"], "details": []}
    assert answer.headers["x-request-id"]


async def answers_then_resets(peer: Peer) -> None:
    await peer.answer()
    await peer.read_head()
    peer.reset()


@pytest.mark.parametrize("failing_spans", [SpanKind.CLIENT], indirect=True, ids=["attempt span"])
async def test_a_failure_while_answering_from_the_upstream_callback_is_answered(
    failing_spans: FailingSpans, faulty: FaultyUpstream, start_edge: StartEdge
) -> None:
    """The fast path answers from the upstream connection's callback, where an exception reaches no
    caller: the client was left waiting forever."""
    faulty.expect(answers_then_resets)
    gateway: Edge = await start_edge(edge_config({"*": faulty.url}))
    raw = await RawClient.connect(gateway.port)
    await raw.send(get("/api/products"))
    assert (await raw.response()).status == 200
    failing_spans.armed = True
    # The pooled connection is reset: the attempt fails, and ending its span raises.
    await raw.send(get("/api/products"))
    contract_error(await raw.response(), 500, "InternalError")
    await raw.close()


@pytest.mark.parametrize(
    "failing_spans", [SpanKind.CLIENT, SpanKind.SERVER], indirect=True, ids=["attempt span", "request span"]
)
async def test_a_failure_after_the_answer_keeps_the_connection_open(
    failing_spans: FailingSpans, edge: Edge, start_edge: StartEdge
) -> None:
    """Book-keeping after the answer (here the spans' end) failed: the connection was closed although
    the answer said keep-alive, and a client sending its next request on it saw it dropped."""
    gateway: Edge = await start_edge(edge.config)
    failing_spans.armed = True
    raw = await RawClient.connect(gateway.port)
    # The first goes out on a new upstream connection (the general path), the others on a pooled one
    # (answered from the upstream connection's callback).
    for number in range(3):
        await raw.send(get(f"/api/products/{number}"))
        answer = await raw.response()
        assert answer.status == 200, answer.body
        assert "connection" not in answer.headers
    await raw.close()


async def test_a_stray_cancellation_is_answered(
    upstream: Upstream, edge: Edge, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CancelledError escaping from something the edge awaited (a library's bug), while nobody cancelled
    the request: the request's task ended without an answer or letting the connection go on."""
    gateway: Edge = await start_edge(edge.config)
    loop = asyncio.get_running_loop()
    create_connection = loop.create_connection

    async def cancelled_upstream(*args: Any, **kwargs: Any) -> Any:
        if args[2] == upstream.port:
            raise asyncio.CancelledError()
        return await create_connection(*args, **kwargs)

    raw = await RawClient.connect(gateway.port)
    monkeypatch.setattr(loop, "create_connection", cancelled_upstream)
    await raw.send(get("/api/products"))
    contract_error(await raw.response(), 500, "InternalError")
    monkeypatch.undo()
    await raw.send(get("/api/products"))
    assert (await raw.response()).status == 200
    await raw.close()
