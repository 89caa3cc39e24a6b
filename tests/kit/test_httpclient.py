"""kit.httpclient, the services' keep-alive HTTP/1.1 client, against small servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kit import tracing
from kit.httpclient import Client

pytestmark = pytest.mark.offline

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(answer: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A server calling `answer(request head, writer)` per request; yields its URL and, per
    connection, how many requests it carried."""
    carried: list[int] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        carried.append(0)
        index = len(carried) - 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                carried[index] += 1
                await answer(head, writer)
        writer.close()

    listening = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", carried
    finally:
        listening.close()


def plain(body: bytes, extra: bytes = b"") -> Handler:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body))

    return answer


async def test_requests_share_one_kept_alive_connection() -> None:
    async with server(plain(b'{"ok":true}')) as (url, carried):
        client = Client(url)
        for _ in range(3):
            assert await client.request("GET", "/x") == (200, b'{"ok":true}')
        await client.close()
    assert carried == [3]


async def test_a_chunked_answer_is_read_whole() -> None:
    async def chunked(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )

    async with server(chunked) as (url, _):
        client = Client(url)
        assert await client.request("GET", "/x") == (404, b"hello world")
        assert await client.request("GET", "/y") == (404, b"hello world")
        await client.close()


async def test_a_get_on_a_connection_the_server_closed_is_sent_again_on_a_new_one() -> None:
    async def once(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # the server drops every connection after one answer, without saying so

    async with server(once) as (url, carried):
        client = Client(url)
        assert await client.request("GET", "/x") == (200, b"ok")
        await asyncio.sleep(0.05)
        assert await client.request("GET", "/x") == (200, b"ok")
        with pytest.raises(ConnectionError):
            await client.request("POST", "/x", body=b"{}")  # not idempotent: never sent twice
        await client.close()
    # One answer on each connection; the POST, on a connection already dropped, reached no server.
    assert carried == [1, 1]


async def test_connection_close_is_honoured_and_an_unreachable_or_slow_server_fails_fast() -> None:
    async with server(plain(b"bye", b"Connection: close\r\n")) as (url, carried):
        client = Client(url)
        await client.request("GET", "/a")
        await client.request("GET", "/b")
        await client.close()
    assert carried == [1, 1]

    async def never(head: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)

    async with server(never) as (url, _):
        with pytest.raises(TimeoutError):
            await Client(url, timeout=0.2).request("GET", "/slow")
    with pytest.raises(ConnectionError):
        await Client(url).request("GET", "/gone")


async def test_a_request_carries_the_callers_trace_and_request_id_unless_from_outside() -> None:
    heads: list[bytes] = []

    async def record(head: bytes, writer: asyncio.StreamWriter) -> None:
        heads.append(head)
        await plain(b"{}")(head, writer)

    trace = "0af7651916cd43dd8448eb211c80319c"
    tracing.traceparent.set(f"00-{trace}-b7ad6b7169203331-01")
    tracing.request_id.set("caller-7")
    async with server(record) as (url, _):
        for client in (Client(url), Client(url, propagate=False)):
            await client.request("GET", "/x")
            await client.close()
    ours, outsiders = heads
    assert re.search(rb"\r\ntraceparent: 00-" + trace.encode() + rb"-[0-9a-f]{16}-01\r\n", ours)
    assert b"\r\nx-request-id: caller-7\r\n" in ours
    # Standing for a shopper (a load generator): no context of ours, the edge starts the trace.
    assert b"traceparent" not in outsiders and b"x-request-id" not in outsiders
