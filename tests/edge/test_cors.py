"""CORS at the edge: preflights answered here, exact origins echoed, refused origins told nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from edge.cors import CorsPolicy
from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import Upstream, edge_config, make_token

ALLOWED = "https://shop.example"
REFUSED = "https://evil.example"


@pytest.fixture
async def cors_client(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> AsyncIterator[httpx.AsyncClient]:
    config = edge_config(
        {name: server.url for name, server in upstreams.items()},
        EDGE_CORS_ORIGINS=f"{ALLOWED}, http://localhost:3000",
    )
    edge: Edge = await start_edge(config)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_answers_a_preflight_from_an_allowed_origin_without_calling_the_service(
    cors_client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    before = len(upstreams["order"].requests)
    response = await cors_client.options("/api/orders/checkout", headers=preflight(ALLOWED))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers["vary"]
    assert len(upstreams["order"].requests) == before


async def test_refuses_a_preflight_from_another_origin(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options("/api/orders/checkout", headers=preflight(REFUSED))
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"
    assert "access-control-allow-origin" not in response.headers


async def test_echoes_an_allowed_origin_on_the_answer(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.get("/api/products?cors=1", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    # Exactly the caller's origin, once: the service's own `*` is dropped.
    assert response.headers.get_list("access-control-allow-origin") == [ALLOWED]
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == "origin"
    assert "x-request-id" in response.headers["access-control-expose-headers"]


async def test_tells_a_refused_origin_nothing(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.get("/api/products?cors=1", headers={"Origin": REFUSED})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "origin"


async def test_edge_errors_are_readable_by_an_allowed_origin(cors_client: httpx.AsyncClient) -> None:
    bad = {"Origin": ALLOWED, "Authorization": f"Bearer {make_token({'exp': 1})}"}
    response = await cors_client.get("/api/orders", headers=bad)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_without_origins_configured_no_cors_headers_are_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products?cors=1", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers


def test_any_origin_is_refused_together_with_credentials() -> None:
    with pytest.raises(ValueError, match="credentials"):
        CorsPolicy(frozenset({"*"}), credentials=True)
    CorsPolicy(frozenset({"*"}), credentials=False)


async def test_any_origin_without_credentials_answers_a_star(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    config = edge_config(
        {name: server.url for name, server in upstreams.items()},
        EDGE_CORS_ORIGINS="*",
        EDGE_CORS_CREDENTIALS="false",
    )
    edge: Edge = await start_edge(config)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        response = await client.get("/api/products", headers={"Origin": REFUSED})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
