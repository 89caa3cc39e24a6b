"""HTTP/1.1 on the client side of the edge: keep-alive, pipelining, streaming, limits, bad input."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

import httpx
import pytest

from edge.exchange import Exchange, Handler
from edge.limits import Limits
from edge.protocol import HttpProtocol
from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import RawClient, Upstream, edge_config
from tests.support import eventually


def get(path: str, *extra: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: shop\r\n" + b"".join(extra) + b"\r\n"


async def test_serves_many_requests_on_one_connection_over_pooled_upstream_connections(
    raw: RawClient, upstream: Upstream
) -> None:
    # Warm the pool, so what follows must reuse rather than open.
    await raw.send(get("/api/products"))
    first = (await raw.response()).json()["connection"]
    before = upstream.connections
    seen = set()
    for i in range(30):
        await raw.send(get(f"/api/products/{i}"))
        response = await raw.response()
        assert response.status == 200
        assert response.json()["path"] == f"/api/products/{i}"
        seen.add(response.json()["connection"])
    assert upstream.connections == before
    assert seen == {first}


async def test_answers_pipelined_requests_in_order(raw: RawClient) -> None:
    # The first is slow upstream: the rest must still come back after it, in the order sent.
    paths = ["/api/products/1?slow=0.2", "/api/products/2", "/api/brands", "/api/categories/3", "/nowhere"]
    await raw.send(b"".join(get(path) for path in paths))
    answers = [await raw.response() for _ in paths]
    assert [a.status for a in answers] == [200, 200, 200, 200, 404]
    assert [a.json().get("path") for a in answers[:4]] == [path.split("?")[0] for path in paths[:4]]


async def test_keeps_the_connection_after_answers_the_edge_gives_itself(raw: RawClient) -> None:
    # 404, 401 and the edge's own endpoints are answered without a service, at once: still keep-alive.
    for path, status in (
        ("/nowhere", 404),
        ("/api/orders", 401),
        ("/health/live", 200),
        ("/api/brands", 200),
    ):
        await raw.send(get(path))
        assert (await raw.response()).status == status
    await raw.send(get("/nowhere") + get("/api/orders") + get("/api/brands"))
    assert [(await raw.response()).status for _ in range(3)] == [404, 401, 200]


async def test_closes_after_answering_connection_close(raw: RawClient) -> None:
    await raw.send(get("/api/products", b"Connection: close\r\n"))
    response = await raw.response()
    assert response.status == 200
    assert response.headers["connection"] == "close"
    assert await raw.closed()


async def test_forwards_a_content_length_body(client: httpx.AsyncClient) -> None:
    body = b'{"email":"a@shop.local","password":"Secret123!"}'
    echo = (await client.post("/api/auth/login", content=body)).json()
    assert echo["body"] == body.decode()
    assert dict(echo["headers"])["content-length"] == str(len(body))


async def test_streams_a_chunked_request_body_before_it_has_all_arrived(
    raw: RawClient, upstreams: dict[str, Upstream]
) -> None:
    upstream = upstreams["payment"]
    await raw.send(
        b"POST /api/payments/vnpay/ipn HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    seen = upstream.body_bytes_seen
    await raw.send(b"5\r\nfirst\r\n")

    async def first_piece_arrived() -> bool:
        return upstream.body_bytes_seen >= seen + 5

    # The service gets the first piece while the client is still sending.
    await eventually(first_piece_arrived, within=2)
    await raw.send(b"7\r\n-second\r\n0\r\n\r\n")
    echo = (await raw.response()).json()
    assert echo["body"] == "first-second"
    assert dict(echo["headers"])["transfer-encoding"] == "chunked"


async def test_streams_a_large_chunked_response(client: httpx.AsyncClient) -> None:
    size = 3 * 1024 * 1024 + 7
    async with client.stream("GET", f"/api/products/export?stream={size}") as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        received = 0
        async for piece in response.aiter_raw():
            # Each 16 KiB block of the service's body is one letter: check nothing is lost or reordered.
            for offset in range(0, len(piece)):
                position = received + offset
                if position % 16384 == 0:
                    assert piece[offset] == 65 + (position // 16384) % 26
            received += len(piece)
    assert received == size


async def test_a_client_that_reads_slowly_still_gets_every_byte(raw: RawClient) -> None:
    size = 4 * 1024 * 1024
    await raw.send(get(f"/api/products/export?stream={size}"))
    # Not reading: the edge must hold back (pause the service) rather than drop or buffer it all.
    await asyncio.sleep(0.3)
    response = await raw.response()
    assert len(response.body) == size
    await raw.send(get("/api/brands"))
    assert (await raw.response()).status == 200


async def test_head_answers_without_a_body_and_the_connections_stay_usable(raw: RawClient) -> None:
    for _ in range(3):
        await raw.send(b"HEAD /api/products/1 HTTP/1.1\r\nHost: shop\r\n\r\n")
        response = await raw.head_response()
        assert response.status == 200
        assert int(response.headers["content-length"]) > 0
        assert response.body == b""
        await raw.send(get("/api/products/2"))
        assert (await raw.response()).json()["path"] == "/api/products/2"


async def test_answers_100_continue_then_forwards_the_body_without_expect(raw: RawClient) -> None:
    await raw.send(
        b"POST /api/auth/register HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert (await raw.response()).status == 100
    await raw.send(b"ping")
    echo = (await raw.response()).json()
    assert echo["body"] == "ping"
    assert "expect" not in dict(echo["headers"])


async def test_refuses_an_oversize_content_length_with_413_and_closes(
    raw: RawClient, upstreams: dict[str, Upstream]
) -> None:
    upstream = upstreams["auth"]
    before = len(upstream.requests)
    await raw.send(b"POST /api/auth/register HTTP/1.1\r\nHost: shop\r\nContent-Length: 10485761\r\n\r\n")
    response = await raw.response()
    assert response.status == 413
    assert response.json()["error"] == "PayloadTooLarge"
    assert response.headers["x-request-id"]
    assert await raw.closed()
    assert len(upstream.requests) == before


async def test_a_client_still_uploading_an_oversize_body_reads_the_413(client: httpx.AsyncClient) -> None:
    # httpx sends the whole body before it reads: the edge must not reset the connection meanwhile.
    response = await client.post("/api/auth/register", content=b"x" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLarge"


async def test_refuses_a_chunked_body_that_grows_past_the_limit(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    config = edge_config({name: server.url for name, server in upstreams.items()})
    small: Edge = await start_edge(config, limits=Limits(max_body=1000))
    raw = await RawClient.connect(small.port)
    await raw.send(b"POST /api/auth/register HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n")
    await raw.send(b"258\r\n" + b"a" * 600 + b"\r\n" + b"258\r\n" + b"b" * 600 + b"\r\n")
    response = await raw.response()
    assert response.status == 413
    assert response.json()["error"] == "PayloadTooLarge"
    assert await raw.closed()
    await raw.close()


async def test_refuses_a_long_target_with_414_and_closes(raw: RawClient) -> None:
    await raw.send(get("/api/products?q=" + "a" * 9000))
    response = await raw.response()
    assert response.status == 414
    assert response.json()["details"] == []
    assert await raw.closed()


async def test_refuses_oversize_headers_with_431_and_closes(raw: RawClient) -> None:
    await raw.send(get("/api/products", *(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(40))))
    response = await raw.response()
    assert response.status == 431
    assert await raw.closed()


async def test_refuses_one_endless_header_line_with_431(raw: RawClient) -> None:
    await raw.send(b"GET /api/products HTTP/1.1\r\nHost: shop\r\nX-Endless: ")
    answer = asyncio.create_task(raw.response())
    # Keep the line growing, in pieces, until the edge has had enough.
    with contextlib.suppress(ConnectionError):
        for _ in range(100):
            if answer.done():
                break
            await raw.send(b"z" * 4096)
            await asyncio.sleep(0.002)
    response = await answer
    assert response.status == 431
    assert await raw.closed()


async def test_answers_malformed_requests_with_400_and_closes(edge: Edge) -> None:
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"GET /api/products HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /api/auth/login HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET http://elsewhere/api/products HTTP/1.1\r\nHost: shop\r\n\r\n",
        b"CONNECT shop:443 HTTP/1.1\r\nHost: shop\r\n\r\n",
    ):
        raw = await RawClient.connect(edge.port)
        await raw.send(garbage)
        response = await raw.response()
        assert response.status == 400, garbage
        assert response.json()["error"] == "ValidationError"
        assert response.headers["content-type"] == "application/json"
        await raw.close()


async def test_a_malformed_request_behind_a_good_one_is_answered_after_it(raw: RawClient) -> None:
    await raw.send(get("/api/products?slow=0.1") + b"BROKEN REQUEST\r\n\r\n")
    assert (await raw.response()).status == 200
    assert (await raw.response()).status == 400
    assert await raw.closed()


async def test_closes_a_connection_left_idle(upstreams: dict[str, Upstream], start_edge: StartEdge) -> None:
    config = edge_config({name: server.url for name, server in upstreams.items()})
    impatient: Edge = await start_edge(config, limits=Limits(idle_timeout=0.2))
    raw = await RawClient.connect(impatient.port)
    await raw.send(get("/api/products"))
    assert (await raw.response()).status == 200
    assert await raw.closed()
    await raw.close()


async def test_answers_408_when_a_body_stalls(upstreams: dict[str, Upstream], start_edge: StartEdge) -> None:
    config = edge_config({name: server.url for name, server in upstreams.items()})
    impatient: Edge = await start_edge(config, limits=Limits(idle_timeout=0.2))
    raw = await RawClient.connect(impatient.port)
    await raw.send(b"POST /api/auth/login HTTP/1.1\r\nHost: shop\r\nContent-Length: 10\r\n\r\nabc")
    response = await raw.response()
    assert response.status == 408
    assert response.json()["error"] == "RequestTimeout"
    assert await raw.closed()
    await raw.close()


def fails_at_once(ex: Exchange) -> Awaitable[None] | None:
    raise RuntimeError("a bug in the handler")


def fails_later(ex: Exchange) -> Awaitable[None] | None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("a bug in the handler's task")

    return work()


def cancelled_stray(ex: Exchange) -> Awaitable[None] | None:
    async def work() -> None:
        await asyncio.sleep(0)
        # Escaped from something it awaited (a library's bug); nobody cancelled the task.
        raise asyncio.CancelledError()

    return work()


@pytest.mark.parametrize(
    "handler",
    [fails_at_once, fails_later, cancelled_stray],
    ids=["at once", "in its task", "a stray CancelledError in its task"],
)
async def test_a_handler_that_fails_still_answers_in_the_contracts_shape(handler: Handler) -> None:
    # A client must never see its connection closed without an answer, whatever went wrong.
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(handler, Limits(), set()), "127.0.0.1", 0)
    raw = await RawClient.connect(server.sockets[0].getsockname()[1])
    await raw.send(get("/api/products"))
    answer = await raw.response()
    assert answer.status == 500
    assert answer.json() == {"error": "InternalError", "message": answer.json()["message"], "details": []}
    assert answer.headers["connection"] == "close"
    assert await raw.closed()
    await raw.close()
    server.close()


def answers_then_fails(ex: Exchange) -> Awaitable[None] | None:
    async def work() -> None:
        ex.respond(200, b"content-type: text/plain\r\n", b"answered")
        await asyncio.sleep(0)
        raise RuntimeError("a bug in the handler's book-keeping")

    return work()


async def test_a_handler_failing_after_its_answer_keeps_the_connection_the_answer_kept() -> None:
    # The answer said keep-alive: closing now drops the client's next request without an answer.
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(answers_then_fails, Limits(), set()), "127.0.0.1", 0
    )
    raw = await RawClient.connect(server.sockets[0].getsockname()[1])
    for _ in range(2):
        await raw.send(get("/api/products"))
        answer = await raw.response()
        assert (answer.status, answer.body) == (200, b"answered")
        assert "connection" not in answer.headers
    await raw.close()
    server.close()
