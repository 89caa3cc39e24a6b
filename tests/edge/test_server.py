"""The edge as a process: its own endpoints, a graceful stop, and `python -m edge` with workers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import Upstream, dead_url, edge_config


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
    assert response.json()["clusters"] == {name: [server.url] for name, server in upstreams.items()}


async def test_counts_requests_by_cluster_and_status_class_in_metrics(client: httpx.AsyncClient) -> None:
    await client.get("/api/products")
    await client.get("/api/orders")
    text = (await client.get("/metrics")).text
    assert 'edge_requests_total{cluster="product",status="2xx"}' in text
    assert 'edge_requests_total{cluster="order",status="4xx"}' in text
    assert 'edge_request_duration_seconds_bucket{cluster="product",le="0.005"}' in text


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


async def test_python_m_edge_serves_with_two_workers_and_stops_on_sigterm(upstream: Upstream) -> None:
    port = int(dead_url().rsplit(":", 1)[1])
    env = {**os.environ, "EDGE_PORT": str(port), "EDGE_WORKERS": "2", "EDGE_SHUTDOWN_GRACE": "1"}
    env.update({f"EDGE_CLUSTER_{name}": upstream.url for name in ("PRODUCT", "AUTH")})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(10):
                while True:
                    try:
                        if (await client.get("/health/live")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            assert (await client.get("/api/products/1")).json()["upstream"] == "product"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
