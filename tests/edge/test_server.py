"""The edge as a process: its own endpoints, a graceful stop, and `python -m edge` with workers."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import orjson
import psutil

from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import Upstream, edge_config, scrape
from tests.processes import free_port, started
from tests.support import eventually


async def test_answers_liveness(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_answers_readiness_with_the_cluster_list(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["clusters"] == {name: {server.url: "up"} for name, server in upstreams.items()}
    assert response.json()["checks"] == {"rateLimitStore": "up"}


async def test_counts_requests_by_route_and_status_class_in_metrics(
    client: httpx.AsyncClient, edge: Edge
) -> None:
    def count(text: str, series: str) -> int:
        found = [line for line in text.splitlines() if line.startswith(series + " ")]
        return int(float(found[0].split()[-1])) if found else 0

    products = 'edge_requests_total{route="GET|HEAD /api/products/**",cluster="product",status="2xx"}'
    orders = 'edge_requests_total{route="/api/orders/**",cluster="order",status="4xx"}'
    before = await scrape(edge)
    await client.get("/api/products")
    await client.get("/api/orders")
    after = await scrape(edge)
    assert count(after, products) == count(before, products) + 1
    assert count(after, orders) == count(before, orders) + 1
    bucket = (
        'edge_request_duration_seconds_bucket{route="GET|HEAD /api/products/**",cluster="product",le="+Inf"}'
    )
    assert count(after, bucket) == count(before, bucket) + 1
    assert "edge_rate_limit_store_up 1" in after
    assert "edge_upstream_up{" in after


async def test_stops_gracefully_letting_in_flight_requests_finish(
    upstream: Upstream, start_edge: StartEdge
) -> None:
    edge: Edge = await start_edge(edge_config({"*": upstream.url}))
    port = edge.port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        in_flight = asyncio.create_task(client.get("/api/products?slow=0.3"))
        await asyncio.sleep(0.1)
        await edge.stop()
        response = await in_flight
        assert response.status_code == 200
        assert response.headers["connection"] == "close"
    try:
        await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        pass
    else:
        raise AssertionError("the stopped edge still accepts connections")


async def test_python_m_edge_serves_with_two_workers_replaces_a_dead_one_logs_json_and_stops_on_sigterm(
    upstream: Upstream, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "EDGE_PORT": str(port),
        "EDGE_WORKERS": "2",
        "EDGE_SHUTDOWN_GRACE": "1",
        "EDGE_ACCESS_LOG": "1",
        "EDGE_HEALTH_INTERVAL": "0",
    }
    env.update({f"EDGE_CLUSTER_{name}": upstream.url for name in ("PRODUCT", "AUTH")})
    access_log = tmp_path / "access.log"
    with started("-m", "edge", env=env, log=access_log, errors=tmp_path / "edge.log") as edge:
        await edge.ready(f"http://127.0.0.1:{port}/health/live", within=10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # A worker killed (as by the OOM killer) is replaced; the other serves meanwhile.
            workers = {child.pid for child in psutil.Process(edge.pid).children()}
            assert len(workers) == 2
            os.kill(min(workers), signal.SIGKILL)

            async def replaced() -> bool:
                now = {child.pid for child in psutil.Process(edge.pid).children()}
                return len(now) == 2 and now != workers

            await eventually(replaced)
            assert (await client.get("/health/live")).status_code == 200
            # Logged by a worker that lives to the end (a killed one's unwritten lines die with it).
            assert (await client.get("/api/products/1")).json()["upstream"] == "product"
        assert edge.stop() == 0
    logged = [orjson.loads(line) for line in access_log.read_bytes().splitlines()]
    [entry] = [entry for entry in logged if entry["target"] == "/api/products/1"]
    assert entry["status"] == 200 and entry["route"] == "GET|HEAD /api/products/**"
    assert entry["requestId"] and entry["ms"] >= 0


async def test_metrics_are_on_the_admin_port_only(client: httpx.AsyncClient, edge: Edge) -> None:
    assert (await client.get("/metrics")).status_code == 404
    assert "edge_requests_total" not in (await client.get("/metrics")).text
    assert edge.admin is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.admin.port}") as admin:
        scraped = await admin.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "edge_upstream_up{" in scraped.text
        assert (await admin.get("/health/ready")).json()["status"] == "ok"
        assert (await admin.get("/health/live")).status_code == 200
        assert (await admin.get("/api/products")).status_code == 404
