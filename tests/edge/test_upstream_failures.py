"""What the client sees when a service is down, slow, rude or gone mid-answer; and the pools."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import RawClient, Upstream, dead_url, edge_config, make_token


def contract_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status
    assert response.json() == {"error": kind, "message": response.json()["message"], "details": []}
    assert response.headers["x-request-id"]


async def test_answers_503_when_no_destination_is_reachable(start_edge: StartEdge) -> None:
    down: Edge = await start_edge(edge_config({"*": f"{dead_url()},{dead_url()}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{down.port}") as client:
        response = await client.get("/api/products", headers={"X-Request-ID": "down-1"})
    contract_error(response, 503, "ServiceUnavailable")
    assert response.headers["x-request-id"] == "down-1"


async def test_fails_over_to_the_next_destination(upstream: Upstream, start_edge: StartEdge) -> None:
    half: Edge = await start_edge(edge_config({"*": f"{dead_url()},{upstream.url}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{half.port}") as client:
        for _ in range(4):
            assert (await client.get("/api/products")).status_code == 200


async def test_balances_round_robin_over_destinations(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    first, second = upstreams["inventory"], upstreams["discount"]
    both: Edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{both.port}") as client:
        names = [(await client.get("/api/products")).json()["upstream"] for _ in range(4)]
    assert names == ["inventory", "discount", "inventory", "discount"]


async def test_answers_502_when_the_service_hangs_up_without_answering(client: httpx.AsyncClient) -> None:
    contract_error(await client.get("/api/products?reset=1"), 502, "BadGateway")


async def test_answers_504_when_the_service_is_too_slow(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await client.get("/api/products?slow=2", headers={"X-Request-ID": "slow-1"})
    contract_error(response, 504, "GatewayTimeout")
    assert response.headers["x-request-id"] == "slow-1"
    # The session edge waits 0.5 s (EDGE_RESPONSE_TIMEOUT in the test config).
    assert time.perf_counter() - started < 1.5
    assert (await client.get("/api/products")).status_code == 200


async def test_cuts_the_client_off_when_the_service_dies_mid_answer(raw: RawClient) -> None:
    await raw.send(b"GET /api/products?close=mid HTTP/1.1\r\nHost: shop\r\n\r\n")
    # The status already went out: the only honest signal left is a short body and a closed connection.
    with pytest.raises(ConnectionError):
        await raw.response()


async def test_reuses_upstream_connections_under_concurrency(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    notify = upstreams["notify"]
    headers = {"Authorization": "Bearer " + make_token()}
    before = notify.connections
    for _ in range(3):
        answers = await asyncio.gather(
            *(client.get("/api/notifications", headers=headers) for _ in range(10))
        )
        assert all(answer.status_code == 200 for answer in answers)
    assert notify.connections - before <= 10


async def test_drops_a_pooled_connection_the_service_closed(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    # The service answers and then closes, as at the end of its keep-alive timeout.
    assert (await client.get("/api/products?bye=1")).status_code == 200
    await asyncio.sleep(0.05)
    for _ in range(3):
        assert (await client.get("/api/products?bye=1")).status_code == 200


async def test_passes_service_errors_through_untouched(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products?status=409")
    assert response.status_code == 409
    assert response.json()["upstream"] == "product"
