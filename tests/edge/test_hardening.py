"""RFC 9112 at the front door: ambiguous framing refused, slow clients cut off, nothing smuggled through."""

from __future__ import annotations

import asyncio
import random

import pytest

from edge.limits import Limits
from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import RawClient, Upstream, edge_config

# Each would let the edge and a service disagree on where a request ends, or is not HTTP/1.1 at all.
MALFORMED = {
    "duplicate content-length": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
    b"Content-Length: 3\r\n\r\nabc",
    "conflicting content-length": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
    b"Content-Length: 40\r\n\r\nabc",
    "content-length list": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    "signed content-length": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    "hex content-length": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc",
    "content-length with chunked": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked twice": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked not last": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "chunked in http/1.0": b"POST /api/auth/login HTTP/1.0\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "missing host": b"GET /api/products HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two hosts": b"GET /api/products HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "space before colon": b"GET /api/products HTTP/1.1\r\nHost: a\r\nX-Evil : 1\r\n\r\n",
    "obsolete line folding": b"GET /api/products HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
    "bare LF in a header": b"GET /api/products HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n",
    "NUL in a header": b"GET /api/products HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n",
    "bad chunk size": b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "control char in target": b"GET /api/pro\x01ducts HTTP/1.1\r\nHost: a\r\n\r\n",
    "unknown version": b"GET /api/products HTTP/3.7\r\nHost: a\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_refuses_ambiguous_framing_and_closes_and_forwards_nothing(
    edge: Edge, upstreams: dict[str, Upstream], request_bytes: bytes
) -> None:
    before = sum(len(server.requests) for server in upstreams.values())
    raw = await RawClient.connect(edge.port)
    # The request, then one that would be smuggled if the edge read the first one's end wrongly.
    await raw.send(request_bytes + b"GET /api/orders HTTP/1.1\r\nHost: a\r\n\r\n")
    response = await raw.response()
    assert response.status == 400, response.body
    assert response.json()["error"] == "ValidationError"
    assert response.headers["connection"] == "close"
    assert await raw.closed()
    await raw.close()
    assert sum(len(server.requests) for server in upstreams.values()) == before


async def test_refuses_a_transfer_coding_it_does_not_know_with_501(edge: Edge) -> None:
    raw = await RawClient.connect(edge.port)
    await raw.send(
        b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    )
    response = await raw.response()
    assert response.status == 501
    assert response.json()["error"] == "NotImplemented"
    assert await raw.closed()
    await raw.close()


async def test_answers_408_to_a_client_dribbling_its_head(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    config = edge_config({name: server.url for name, server in upstreams.items()})
    edge: Edge = await start_edge(config, limits=Limits(header_timeout=0.3))
    raw = await RawClient.connect(edge.port)
    answer = asyncio.create_task(raw.response())
    # Slowloris: a byte at a time, never finishing the head, each byte well within the idle timeout.
    for byte in b"GET /api/products HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 100:
        if answer.done():
            break
        try:
            await raw.send(bytes([byte]))
        except ConnectionError:
            break
        await asyncio.sleep(0.02)
    response = await answer
    assert response.status == 408
    assert response.json()["error"] == "RequestTimeout"
    assert await raw.closed()
    await raw.close()


async def test_a_pipelined_request_waiting_behind_a_slow_one_is_not_timed_out(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    config = edge_config({name: server.url for name, server in upstreams.items()}, EDGE_RESPONSE_TIMEOUT="2")
    edge: Edge = await start_edge(config, limits=Limits(header_timeout=0.2))
    raw = await RawClient.connect(edge.port)
    get = b"GET /api/products%s HTTP/1.1\r\nHost: a\r\n\r\n"
    await raw.send(get % b"?slow=0.5" + get % b"/2" + get % b"/3")
    assert [(await raw.response()).status for _ in range(3)] == [200, 200, 200]
    await raw.close()


def mutations(seed: int, count: int) -> list[bytes]:
    """Valid requests with random bytes flipped, inserted, dropped or repeated (a small fuzzer)."""
    rng = random.Random(seed)
    base = [
        b"GET /api/products?page=2 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
        b'POST /api/auth/login HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n{"email":"x"}',
        b"POST /api/auth/register HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
    ]
    alphabet = b"\r\n :;,\t\x00\x7f0123456789abcdefABCDEF-/%?#chunkedContent-LengthTransfer-Encoding"
    found = []
    for _ in range(count):
        data = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            action = rng.randrange(4)
            if action == 0:
                data[at] = rng.choice(alphabet)
            elif action == 1:
                data[at:at] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            elif action == 2:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = data[at : at + rng.randint(1, 16)]
        found.append(bytes(data))
    return found


async def test_fuzzed_requests_get_an_http_answer_or_a_close_never_a_500(edge: Edge) -> None:
    for request_bytes in mutations(seed=9112, count=150):
        raw = await RawClient.connect(edge.port)
        await raw.send(request_bytes)
        raw.writer.write_eof()
        try:
            response = await raw.response()
        except ConnectionError:
            pass  # a head cut short by our own EOF: closing is a fair answer
        else:
            assert response.status < 500 or response.status in (501, 502, 504), (
                request_bytes,
                response.status,
            )
            assert response.status != 500
        await raw.close()
    # And the edge is still fine.
    raw = await RawClient.connect(edge.port)
    await raw.send(b"GET /api/products HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await raw.response()).status == 200
    await raw.close()
