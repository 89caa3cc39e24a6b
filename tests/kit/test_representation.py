"""Cached answers: 304 for a current ETag, gzip from the stored deflated head plus a per-request tail."""

from __future__ import annotations

import gzip
import zlib

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.representation import MIN_GZIP, Representation, accepts_gzip, answer, matches, pack

pytestmark = pytest.mark.offline

BODY = msgspec.json.encode({"name": "Laptop", "tags": [f"tag {n}" for n in range(300)]})
STOCK_TAIL = b',"stock":{"available":3}}'


def test_the_gzipped_answer_is_the_body_and_its_tail() -> None:
    found = Representation(pack(BODY))
    assert gzip.decompress(found.gzip()) == found.identity() == BODY
    assert gzip.decompress(found.gzip(STOCK_TAIL)) == found.identity(STOCK_TAIL) == BODY[:-1] + STOCK_TAIL
    # One gzip member, read to its end by a streaming decoder as HTTP clients use.
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert decoder.decompress(found.gzip(STOCK_TAIL)) == BODY[:-1] + STOCK_TAIL and decoder.eof
    assert len(found.gzip()) < len(BODY) / 3


def test_a_small_body_is_never_compressed_and_a_plain_one_is_packed_on_the_spot() -> None:
    small = b'{"id":1}'
    assert len(small) < MIN_GZIP and Representation(pack(small)).deflated == b""
    plain = Representation(BODY)
    assert plain.identity() == BODY and plain.etag() == Representation(pack(BODY)).etag()


def test_the_etag_follows_the_body_and_the_tail() -> None:
    found = Representation(pack(BODY))
    assert found.etag().startswith('W/"')
    assert found.etag(STOCK_TAIL) != found.etag(b',"stock":null}')
    assert Representation(pack(BODY + b" ")).etag() != found.etag()


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_with_its_weights(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_if_none_match_compares_weakly() -> None:
    assert matches('"abc"', 'W/"abc"') and matches('W/"x", W/"abc"', 'W/"abc"') and matches("*", 'W/"a"')
    assert not matches('"abd"', 'W/"abc"') and not matches("", 'W/"abc"')


async def _serve(request: Request) -> Response:
    return answer(request, Representation(pack(BODY)), STOCK_TAIL)


async def test_answers_over_http() -> None:
    app = Starlette(routes=[Route("/doc", _serve, methods=["GET", "PUT"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        first = await client.get("/doc", headers={"accept-encoding": "gzip"})
        assert first.headers["content-encoding"] == "gzip" and first.headers["vary"] == "Accept-Encoding"
        assert first.content == BODY[:-1] + STOCK_TAIL  # httpx decoded it
        plain = await client.get("/doc", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == first.content
        etag = first.headers["etag"]
        again = await client.get("/doc", headers={"if-none-match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        write = await client.put("/doc", headers={"if-none-match": etag})
        assert write.status_code == 200
