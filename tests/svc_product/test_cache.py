from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from kit.cache import connect
from tests.processes import free_port, started
from tests.support import patient_redis
from tests.svc_product.conftest import admin, loads, new_category, new_product, seller, user


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = connect(patient_redis(os.environ["REDIS_URL"]))
    yield client
    await client.aclose()


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/admin/cache/stats", headers=admin())
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def purge(client: httpx.AsyncClient, prefix: str) -> int:
    response = await client.delete("/api/admin/cache", params={"prefix": prefix}, headers=admin())
    assert response.status_code == 200, response.text
    return response.json()["deleted"]  # type: ignore[no-any-return]


async def test_a_miss_loads_once_and_the_next_read_is_a_hit(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    await purge(client, f"product:{product['id']}")
    before, counted = await loads(client, "detail"), await stats(client)
    first = await client.get(f"/api/products/{product['id']}")
    second = await client.get(f"/api/products/{product['id']}")
    assert first.json() == second.json()
    assert await loads(client, "detail") == before + 1
    after = await stats(client)
    assert (after["hits"] - counted["hits"], after["misses"] - counted["misses"]) == (1, 1)
    assert 0 < after["hitRatio"] <= 1 and after["redisAvailable"] is True


async def test_entries_live_as_long_as_the_design_says(
    client: httpx.AsyncClient, redis: Redis, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    await client.get("/api/products", params={"categoryId": category["id"], "pageSize": 7})
    await client.get("/api/categories")
    await client.get("/api/brands")
    await client.get(f"/api/products/{product['id']}/reviews")
    expected = {
        f"product:{product['id']}:v*:detail|packed": 3600,
        f"product:list:v*:*c={category['id']}*": 900,
        "category:tree:v*:all|packed": 7200,
        "brand:list:v*:all|packed": 7200,
        f"product:{product['id']}:reviews:v*": 900,
    }
    for pattern, ttl in expected.items():
        keys = [key async for key in redis.scan_iter(match=pattern)]
        assert keys, pattern
        assert ttl - 60 < await redis.ttl(keys[-1]) <= ttl


async def test_an_update_is_visible_on_the_next_read_which_is_a_hit(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner, price=100)
    listed = {"categoryId": category["id"], "fields": "id,price"}
    assert (await client.get("/api/products", params=listed)).json()["items"][0]["price"] == 100
    assert (await client.get(f"/api/products/{product['id']}")).json()["price"] == 100

    assert (
        await client.patch(f"/api/products/{product['id']}", json={"price": 80}, headers=owner)
    ).status_code == 200
    before = await loads(client, "detail")
    assert (await client.get(f"/api/products/{product['id']}")).json()["price"] == 80
    assert await loads(client, "detail") == before  # the writer already put the new document in the cache
    assert (await client.get("/api/products", params=listed)).json()["items"][0]["price"] == 80


async def test_a_hundred_concurrent_misses_cause_one_database_load(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    await purge(client, f"product:{product['id']}")
    before = await loads(client, "detail")
    responses = await asyncio.gather(*(client.get(f"/api/products/{product['id']}") for _ in range(100)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert await loads(client, "detail") == before + 1


async def test_a_write_bumps_every_cached_list(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    other = await new_category(client)
    await new_product(client, other["id"])
    first = (await client.get("/api/products", params={"categoryId": other["id"]})).json()
    await new_product(client, category["id"])  # a product elsewhere
    before = await loads(client, "list")
    again = (await client.get("/api/products", params={"categoryId": other["id"]})).json()
    assert again == first and await loads(client, "list") == before + 1


async def test_a_purge_empties_only_the_catalogs_keys(
    client: httpx.AsyncClient, redis: Redis, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    await client.get("/api/categories")
    await redis.set("user:profile:keep-me", b"1", ex=60)
    assert await purge(client, "category:") >= 1
    assert not [k async for k in redis.scan_iter(match="category:*:v*")]
    assert [k async for k in redis.scan_iter(match=f"product:{product['id']}:v*")]
    assert await purge(client, "") > 0
    assert not [k async for k in redis.scan_iter(match="product:*:v*")]
    # Version counters stay, so no namespace ever counts up to an old version again.
    assert await redis.get("category:tree") is not None
    assert await redis.get("user:profile:keep-me") == b"1"
    assert (await client.get(f"/api/products/{product['id']}")).status_code == 200


async def test_a_purge_reaches_details_the_process_holds_near(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    # Read twice: the second answer came from the process's near cache (kit.near); after a purge the
    # next read must come from the database, not from what the process held.
    product = await new_product(client, category["id"])
    path = f"/api/products/{product['id']}"
    await client.get(path)
    await client.get(path)
    before = await loads(client, "detail")
    assert await purge(client, f"product:{product['id']}") >= 1
    assert (await client.get(path)).status_code == 200
    assert await loads(client, "detail") == before + 1


@pytest.mark.parametrize("prefix", ["user:", "lock:", "*", "x"])
async def test_a_purge_outside_the_catalog_is_a_400(client: httpx.AsyncClient, prefix: str) -> None:
    response = await client.delete("/api/admin/cache", params={"prefix": prefix}, headers=admin())
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "prefix"


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (user(), 403), (seller(), 403)])
async def test_cache_administration_is_for_admins(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    assert (await client.get("/api/admin/cache/stats", headers=headers)).status_code == status
    assert (await client.delete("/api/admin/cache", headers=headers)).status_code == status


@pytest.fixture
def without_redis(tmp_path: Path) -> Iterator[httpx.Client]:
    """svc_product as its own process (as in production), with Redis pointing at a closed port."""
    port = free_port()
    env = {"PRODUCT_PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with started("-m", "svc_product", env=env, log=tmp_path / "product.log") as process:
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(f"{url}/health/live")
        with httpx.Client(base_url=url, timeout=5) as http:
            yield http


async def test_reads_and_writes_go_on_when_redis_is_down(
    client: httpx.AsyncClient, category: dict[str, Any], without_redis: httpx.Client
) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner)
    http = without_redis
    assert http.get(f"/api/products/{product['id']}").json()["name"] == product["name"]
    assert http.get("/api/products", params={"categoryId": category["id"]}).json()["totalCount"] == 1
    assert http.get("/api/categories").status_code == 200 and http.get("/api/brands").status_code == 200
    changed = http.patch(f"/api/products/{product['id']}", json={"name": "Renamed while down"}, headers=owner)
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed while down"
    assert http.get(f"/api/products/{product['id']}").json()["name"] == "Renamed while down"
    ready = http.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("down")
    assert http.get("/api/admin/cache/stats", headers=admin()).json()["redisAvailable"] is False
    assert http.delete("/api/admin/cache", headers=admin()).status_code == 503
