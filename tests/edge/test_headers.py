"""Header policy at the edge: hop-by-hop both ways, forwarding, trace context, Host."""

from __future__ import annotations

import re

import httpx

from tests.edge.support import RawClient

# A trace started by an edge that does not trace (the session's): not sampled, or every traced service
# behind it would keep every such trace.
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00")


def upstream_headers(response: httpx.Response) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


async def test_hop_by_hop_request_headers_are_not_forwarded(raw: RawClient) -> None:
    await raw.send(
        b"GET /api/products HTTP/1.1\r\nHost: shop\r\n"
        b"Connection: keep-alive, Upgrade, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=300\r\n"
        b"Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\n"
        b"X-Kept: yes\r\n\r\n"
    )
    response = await raw.response()
    assert response.status == 200
    names = {name for name, _ in response.json()["headers"]}
    assert "x-kept" in names
    assert not names & {
        "connection",
        "x-drop-me",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
    # The upgrade was ignored, not performed: the connection still speaks HTTP/1.1.
    await raw.send(b"GET /api/brands HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert (await raw.response()).status == 200


async def test_hop_by_hop_response_headers_are_not_returned(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products?hop=1", headers={"X-Request-ID": "mine"})
    assert response.status_code == 200
    assert response.headers["x-kept"] == "yes"
    for name in ("x-secret-hop", "keep-alive", "proxy-connection", "upgrade"):
        assert name not in response.headers
    # The edge's request id replaces the one the service made up.
    assert response.headers.get_list("x-request-id") == ["mine"]


async def test_x_forwarded_for_gets_the_peer_appended(client: httpx.AsyncClient) -> None:
    alone = upstream_headers(await client.get("/api/products"))
    assert alone["x-forwarded-for"] == ["127.0.0.1"]
    assert alone["x-forwarded-proto"] == ["http"]
    chained = upstream_headers(
        await client.get(
            "/api/products", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        )
    )
    assert chained["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert chained["x-forwarded-proto"] == ["http"]


async def test_a_valid_traceparent_is_kept(client: httpx.AsyncClient) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    seen = upstream_headers(await client.get("/api/products", headers={"traceparent": traceparent}))
    assert seen["traceparent"] == [traceparent]


async def test_a_traceparent_is_created_when_missing_or_invalid(client: httpx.AsyncClient) -> None:
    created = upstream_headers(await client.get("/api/products"))["traceparent"]
    assert len(created) == 1 and TRACEPARENT.fullmatch(created[0])
    for invalid in (
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "garbage",
    ):
        replaced = upstream_headers(await client.get("/api/products", headers={"traceparent": invalid}))
        assert replaced["traceparent"] != [invalid]
        assert TRACEPARENT.fullmatch(replaced["traceparent"][0])


async def test_the_host_header_passes_through(client: httpx.AsyncClient) -> None:
    seen = upstream_headers(await client.get("/api/products", headers={"Host": "shop.example:8443"}))
    assert seen["host"] == ["shop.example:8443"]


async def test_an_http_1_0_request_without_host_names_the_destination(raw: RawClient) -> None:
    await raw.send(b"GET /api/products HTTP/1.0\r\n\r\n")
    response = await raw.response()
    assert response.status == 200
    [host] = [value for name, value in response.json()["headers"] if name == "host"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", host)
    assert await raw.closed()
