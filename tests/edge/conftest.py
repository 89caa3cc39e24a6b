"""Fixtures: the upstream and the edge in front of it (one of each for the session), clients."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import httpx
import pytest
from redis.asyncio import Redis

from edge.config import EdgeConfig
from edge.server import Edge
from tests.conftest import uses_servers
from tests.edge.faulty import FaultyUpstream
from tests.edge.support import CLUSTERS, RawClient, Upstream, edge_config


@pytest.fixture(scope="session", autouse=True)
async def fresh_servers(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The edge tests touch no database or broker: no suite-wide reset of those. They use the test
    run's Redis database for rate limits only, and leave no limit state behind."""
    yield
    if not uses_servers(request.config):
        return
    redis = Redis.from_url(os.environ["REDIS_URL"])
    keys = [key async for key in redis.scan_iter("edge:rl:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


@pytest.fixture(scope="session")
async def upstreams() -> AsyncIterator[dict[str, Upstream]]:
    """One upstream per cluster, each echoing its own name, so a test sees where a request went."""
    servers = {name: Upstream(name) for name in CLUSTERS}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.stop()


@pytest.fixture(scope="session")
def upstream(upstreams: dict[str, Upstream]) -> Upstream:
    """The product service: its reads are public, so most tests need no token to reach it."""
    return upstreams["product"]


@pytest.fixture(scope="session")
async def edge(upstreams: dict[str, Upstream]) -> AsyncIterator[Edge]:
    gateway = Edge(edge_config({name: server.url for name, server in upstreams.items()}))
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture
async def client(edge: Edge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}", timeout=5) as http:
        yield http


@pytest.fixture
async def raw(edge: Edge) -> AsyncIterator[RawClient]:
    connection = await RawClient.connect(edge.port)
    yield connection
    await connection.close()


StartEdge = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def start_edge() -> AsyncIterator[StartEdge]:
    """Start extra edges with their own config (dead destinations, other limits); stopped after."""
    started: list[Edge] = []

    async def start(config: EdgeConfig, **changes: object) -> Edge:
        gateway = Edge(replace(config, **changes))  # type: ignore[arg-type]
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def faulty() -> AsyncIterator[FaultyUpstream]:
    """A service that misbehaves at the moment a test chooses (tests/edge/faulty.py)."""
    service = FaultyUpstream()
    await service.start()
    yield service
    service.close()
