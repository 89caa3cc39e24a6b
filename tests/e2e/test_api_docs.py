"""What REST clients get from the edge: the API's document, its docs page, conditional and gzipped reads."""

from __future__ import annotations

import gzip

import httpx
import pytest
from openapi_spec_validator import validate

from kit.representation import MIN_GZIP
from shop.map import demo_product_id
from tests.e2e.support import whole_document

pytestmark = pytest.mark.e2e


async def test_the_edge_serves_the_whole_api_as_one_valid_document(edge: httpx.AsyncClient) -> None:
    document = await whole_document(edge)
    validate(document)
    operations = [op for item in document["paths"].values() for op in item.values()]
    assert len(operations) > 75
    assert all(op["description"] and "429" in op["responses"] for op in operations)
    assert document["paths"]["/api/cart"]["get"]["security"] == [{"bearer": []}]


async def test_the_docs_page_and_its_assets_come_from_the_edge(edge: httpx.AsyncClient) -> None:
    page = await edge.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"):
        assert asset in page.text
        answer = await edge.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 10_000


async def test_hot_reads_answer_304_while_their_etag_is_current(edge: httpx.AsyncClient) -> None:
    tree = (await edge.get("/api/categories")).json()
    for path in (
        f"/api/products/{demo_product_id(1)}",
        "/api/products?pageSize=50&sortBy=price",
        "/api/categories",
        f"/api/categories/{tree[0]['id']}",
    ):
        first = await edge.get(path)
        etag = first.headers["etag"]
        again = await edge.get(path, headers={"if-none-match": etag})
        assert again.status_code == 304, path
        assert again.content == b"" and again.headers["etag"] == etag
        stale = await edge.get(path, headers={"if-none-match": 'W/"0000000000000000"'})
        assert stale.status_code == 200 and stale.json() == first.json()


async def on_the_wire(client: httpx.AsyncClient, path: str, encoding: str) -> tuple[httpx.Headers, bytes]:
    """The answer's headers and its body as sent (not decoded)."""
    async with client.stream("GET", path, headers={"accept-encoding": encoding}) as answer:
        assert answer.status_code == 200, path
        return answer.headers, b"".join([chunk async for chunk in answer.aiter_raw()])


async def test_large_reads_come_gzipped_to_clients_that_accept_it(edge: httpx.AsyncClient) -> None:
    for path in (f"/api/products/{demo_product_id(2)}", "/api/products?pageSize=100", "/api/categories"):
        plain_headers, plain = await on_the_wire(edge, path, "identity")
        headers, packed = await on_the_wire(edge, path, "gzip, br")
        assert "content-encoding" not in plain_headers
        assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding", path
        assert gzip.decompress(packed) == plain and len(packed) < len(plain) / 2, path
    brand = (await edge.get("/api/brands")).json()[0]["id"]
    small_headers, small = await on_the_wire(edge, f"/api/brands/{brand}", "gzip")
    assert "content-encoding" not in small_headers and len(small) < MIN_GZIP
