"""Several destinations per cluster: balancing, health checks, ejection and return, retries, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from edge.routes import Route, RouteTable
from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import Upstream, edge_config, make_token, scrape
from tests.support import eventually


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Upstream, Upstream]]:
    """Two destinations of one service, each answering with its own name."""
    first, second = Upstream("first"), Upstream("second")
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


def client_of(edge: Edge) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}", timeout=5)


async def names(client: httpx.AsyncClient, count: int, path: str = "/api/products") -> list[str]:
    return [(await client.get(path)).json()["upstream"] for _ in range(count)]


async def test_least_requests_sends_new_work_to_the_idle_destination(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}, EDGE_RESPONSE_TIMEOUT="5"))
    async with client_of(edge) as client:
        slow = asyncio.create_task(client.get("/api/products?slow=1"))

        async def arrived() -> bool:
            return bool(first.requests or second.requests)

        await eventually(arrived, within=2, interval=0.01)
        busy = "first" if first.requests else "second"
        # While one destination holds a slow request, everything else goes to the other.
        assert set(await names(client, 4)) == {"second" if busy == "first" else "first"}
        assert (await slow).json()["upstream"] == busy


async def test_round_robin_when_asked(pair: tuple[Upstream, Upstream], start_edge: StartEdge) -> None:
    first, second = pair
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}, EDGE_BALANCE="round_robin"))
    async with client_of(edge) as client:
        assert await names(client, 4) == ["first", "second", "first", "second"]


async def test_ejects_a_failing_destination_and_takes_it_back_later(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    first.hang_up = True
    edge = await start_edge(
        # Ejected long enough that a busy machine still scrapes it ejected (2 s was not, with the fault
        # suite running beside the tests on two slow cores).
        edge_config({"*": f"{first.url},{second.url}"}, EDGE_EJECT_AFTER="2", EDGE_EJECT_SECONDS="6")
    )
    async with client_of(edge) as client:
        # Every GET succeeds: a hang-up before any answer is retried on the other destination.
        assert await names(client, 6) == ["second"] * 6
        tried = first.connections
        assert tried == 2  # two failures in a row, then ejected: no more attempts
        metrics = await scrape(edge)
        assert f'edge_upstream_up{{cluster="product",destination="{first.url}"}} 0' in metrics
        first.hang_up = False

        async def taken_back() -> bool:
            return "first" in await names(client, 4)

        await eventually(taken_back, within=20, interval=0.2)


async def test_a_destination_failing_its_readiness_check_leaves_the_rotation(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    # Checks every 0.2 s, each given 0.2 s: on a machine busy with other suites a 0.05 s check timed
    # out twice in a row for the ready destination too.
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}, EDGE_HEALTH_INTERVAL="0.2"))
    async with client_of(edge) as client:
        first.ready = False

        async def only_second() -> bool:
            if set(await names(client, 4, "/api/brands")) != {"second"}:
                return False
            ready = (await client.get("/health/ready")).json()
            return bool(ready["clusters"]["product"] == {first.url: "down", second.url: "up"})

        await eventually(only_second, within=15)
        first.ready = True

        async def both() -> bool:
            return set(await names(client, 4, "/api/brands")) == {"first", "second"}

        await eventually(both, within=15)


async def test_every_destination_down_is_still_tried(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    first.ready = second.ready = False
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}, EDGE_HEALTH_INTERVAL="0.2"))
    async with client_of(edge) as client:

        async def both_down() -> bool:
            clusters = (await client.get("/health/ready")).json()["clusters"]
            return bool(clusters["product"] == {first.url: "down", second.url: "down"})

        await eventually(both_down, within=15)
        assert (await client.get("/api/brands")).status_code == 200


async def test_a_request_with_a_body_is_not_retried(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}, EDGE_BALANCE="round_robin"))
    async with client_of(edge) as client:
        # The first destination answers nothing to this request: not safe to send it again.
        response = await client.post(
            "/api/products?reset=1", json={"name": "x"}, headers={"Authorization": f"Bearer {make_token()}"}
        )
        assert response.status_code == 502
        assert len(first.requests) + len(second.requests) == 1


async def test_a_get_the_service_hung_up_on_is_retried_once(
    pair: tuple[Upstream, Upstream], start_edge: StartEdge
) -> None:
    first, second = pair
    edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}))
    async with client_of(edge) as client:
        response = await client.get("/api/products?reset=1")
        # Both destinations hang up on this one: one retry, then 502.
        assert response.status_code == 502
        assert len(first.requests) + len(second.requests) == 2


async def test_a_route_can_wait_longer_than_the_default(upstream: Upstream, start_edge: StartEdge) -> None:
    config = edge_config({"*": upstream.url})
    patient = RouteTable([Route("/api/products/**", "product", public=True, response_timeout=2.0)])
    edge = await start_edge(replace(config, routes=patient))
    async with client_of(edge) as client:
        # The default (0.5 s in tests) would give up on this one.
        assert (await client.get("/api/products/export?slow=0.8")).status_code == 200


async def test_readiness_stays_200_while_one_cluster_is_down_and_503_when_none_can_be_routed(
    start_edge: StartEdge, pair: tuple[Upstream, Upstream]
) -> None:
    catalog, rest = pair
    # 0.2 s, not less: a check's timeout is its interval, and the ready cluster must never miss two.
    edge = await start_edge(edge_config({"product": catalog.url, "*": rest.url}, EDGE_HEALTH_INTERVAL="0.2"))
    async with client_of(edge) as client:
        catalog.ready = False

        async def catalog_down() -> httpx.Response | None:
            answer = await client.get("/health/ready")
            return answer if answer.json()["routing"]["product"] == "down" else None

        degraded = await eventually(catalog_down, within=15)
        assert degraded.status_code == 200
        assert degraded.json()["status"] == "degraded"
        assert degraded.json()["routing"]["auth"] == "up"
        rest.ready = False

        async def nothing_routable() -> bool:
            return (await client.get("/health/ready")).status_code == 503

        await eventually(nothing_routable, within=15)
        assert (await client.get("/health/ready")).json()["status"] == "unavailable"
        catalog.ready = True

        async def back() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(back, within=15)
