"""The per-request middleware: request ids, trace context, RED metrics and the last-resort 500."""

from __future__ import annotations

import io
import logging
import logging.config
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit import tracing
from kit.logs import JsonFormatter, granian_config
from kit.metrics import Observe

pytestmark = pytest.mark.offline

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


async def context(request: Request) -> Response:
    return JSONResponse({"requestId": tracing.request_id.get(), "traceparent": tracing.traceparent.get()})


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    routes = [Route("/observe-test/{item}", context), Route("/observe-test-broken", broken)]
    app = Starlette(routes=routes, middleware=[Middleware(Observe)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_sane_request_id_is_kept_and_returned(client: httpx.AsyncClient) -> None:
    answer = await client.get("/observe-test/1", headers={"X-Request-ID": "my-id-42"})
    assert answer.headers["x-request-id"] == "my-id-42" == answer.json()["requestId"]


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129])
async def test_a_missing_or_insane_request_id_is_replaced_by_a_new_uuid4(
    client: httpx.AsyncClient, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    ids = {(await client.get("/observe-test/1", headers=headers)).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    for rid in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", rid) and uuid.UUID(rid).version == 4


async def test_a_valid_traceparent_continues_its_trace_in_a_new_span(client: httpx.AsyncClient) -> None:
    parent = f"00-{PARENT_TRACE}-b7ad6b7169203331-00"
    seen = (await client.get("/observe-test/1", headers={"traceparent": parent})).json()["traceparent"]
    match = _TRACEPARENT.match(seen)
    assert match and match.group(1) == PARENT_TRACE and match.group(3) == "00"
    assert match.group(2) not in ("b7ad6b7169203331", "0" * 16)


@pytest.mark.parametrize("given", [None, "garbage", f"00-{'0' * 32}-b7ad6b7169203331-01"])
async def test_without_a_valid_traceparent_a_new_trace_starts(
    client: httpx.AsyncClient, given: str | None
) -> None:
    headers = {} if given is None else {"traceparent": given}
    seen = {(await client.get("/observe-test/1", headers=headers)).json()["traceparent"] for _ in range(10)}
    matches = [_TRACEPARENT.match(t) for t in seen]
    traces = {m.group(1) for m in matches if m}
    assert len(traces) == 10 and "0" * 32 not in traces
    # This process does not trace: its new traces must not tell traced services behind it to keep them.
    assert {m.group(3) for m in matches if m} == {"00"}


async def test_requests_are_counted_and_timed_per_route_template_and_status(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "/observe-test/{item}"}
    count, timed = (
        sample("shop_http_requests_total", status="200", **labels),
        sample("shop_http_request_duration_seconds_count", **labels),
    )
    for item in ("a", "b", "c"):
        assert (await client.get(f"/observe-test/{item}")).status_code == 200
    assert sample("shop_http_requests_total", status="200", **labels) == count + 3
    assert sample("shop_http_request_duration_seconds_count", **labels) == timed + 3


async def test_an_unhandled_error_is_a_counted_contract_500_with_a_request_id(
    client: httpx.AsyncClient,
) -> None:
    labels = {"method": "GET", "route": "/observe-test-broken", "status": "500"}
    before = sample("shop_http_requests_total", **labels)
    answer = await client.get("/observe-test-broken")
    assert answer.status_code == 500 and answer.headers["x-request-id"]
    assert answer.json()["message"] == "An unexpected error occurred"
    assert sample("shop_http_requests_total", **labels) == before + 1


async def test_the_access_log_has_the_route_template_status_duration_request_id_and_trace() -> None:
    app = Starlette(
        routes=[Route("/observe-log/{item}", context)], middleware=[Middleware(Observe, access_log=1.0)]
    )
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("test"))
    access = logging.getLogger("access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            traceparent = f"00-{PARENT_TRACE}-b7ad6b7169203331-01"
            headers = {"X-Request-ID": "logged-42", "traceparent": traceparent}
            await client.get("/observe-log/7", headers=headers)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    (line,) = [orjson.loads(raw) for raw in lines.getvalue().splitlines()]
    assert line["route"] == "/observe-log/{item}" and line["method"] == "GET" and line["status"] == 200
    assert line["requestId"] == "logged-42" and line["traceId"] == PARENT_TRACE
    assert isinstance(line["ms"], float) and line["service"] == "test"


def test_granians_own_lines_are_json_too() -> None:
    config = granian_config("test")
    logging.config.dictConfig(config)
    lines = io.StringIO()
    granian = logging.getLogger("_granian")
    (handler,) = granian.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(lines)
    granian.info("Listening at: http://127.0.0.1:5001")
    assert orjson.loads(lines.getvalue())["message"] == "Listening at: http://127.0.0.1:5001"
