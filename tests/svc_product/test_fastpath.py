"""A cached product detail is answered before Starlette's router (svc_product.fastpath): exactly as the
route answers it, whatever the request asks for."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.svc_product.conftest import admin, new_product, user

VARIANTS = {
    "plain": {"accept-encoding": "identity"},
    "gzip": {"accept-encoding": "gzip"},
    "signed in": {**user(), "accept-encoding": "identity"},
}


async def metered(client: httpx.AsyncClient) -> float:
    """Detail answers counted under the route's own template so far."""
    text = (await client.get("/metrics")).text
    pattern = (
        r'^shop_http_requests_total\{method="GET",route="/api/products/\{productId\}",status="200"\} (\S+)$'
    )
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


def seen(answer: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(name, value) for name, value in answer.headers.multi_items() if name != "x-request-id"]
    return answer.status_code, headers, answer.content


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_cached_detail_is_answered_as_the_route_answers_it(
    client: httpx.AsyncClient, category: dict[str, Any], variant: str
) -> None:
    product = await new_product(client, category["id"], description="long enough to be gzipped " * 60)
    path = f"/api/products/{product['id']}"
    purged = await client.delete(
        "/api/admin/cache", params={"prefix": f"product:{product['id']}"}, headers=admin()
    )
    assert purged.status_code == 200
    counted = await metered(client)
    by_router = await client.get(path, headers=VARIANTS[variant])  # a miss: loaded through the route
    from_cache = await client.get(path, headers=VARIANTS[variant])  # a hit: the fast path
    assert seen(from_cache) == seen(by_router)
    assert from_cache.headers["x-request-id"] != by_router.headers["x-request-id"]
    assert (from_cache.headers.get("content-encoding") == "gzip") is (variant == "gzip")
    assert await metered(client) == counted + 2
    etag = from_cache.headers["etag"]
    revalidated = await client.get(path, headers={**VARIANTS[variant], "if-none-match": etag})
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == etag and revalidated.headers["vary"] == "Accept-Encoding"


async def test_other_spellings_and_unknown_ids_still_take_the_route(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    await client.get(f"/api/products/{product['id']}")  # cached now
    upper = await client.get(f"/api/products/{product['id'].upper()}")
    assert upper.status_code == 200 and upper.json()["id"] == product["id"]
    unknown = await client.get("/api/products/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404 and unknown.json()["error"] == "NotFound"
