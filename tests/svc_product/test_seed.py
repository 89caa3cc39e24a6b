from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from kit import db as kit_db
from shop.map import demo_product_id, seed_user_id
from svc_product import seed
from tests.svc_product.conftest import CONFIG

COUNTS = """
SELECT (SELECT count(*) FROM products) AS products, (SELECT count(*) FROM brands) AS brands,
       (SELECT count(*) FROM categories) AS categories, (SELECT count(*) FROM product_variants) AS variants,
       (SELECT count(*) FROM product_images) AS images, (SELECT count(*) FROM reviews) AS reviews
"""


@pytest.fixture(scope="module")
async def seeded(client: httpx.AsyncClient) -> AsyncIterator[asyncpg.Pool]:
    assert CONFIG.database_url
    pool = await kit_db.create_pool(CONFIG.database_url)
    await seed.seed(pool, CONFIG)
    yield pool
    await pool.close()


async def test_the_demo_catalog_is_large_and_complete(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        ids = [demo_product_id(n) for n in range(1, 10_001)]
        demo = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT seller_id) AS sellers, min(seller_id::text) AS seller,"
            " bool_and(EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id)) AS variants,"
            " bool_and(EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = p.id)) AS images"
            " FROM products p WHERE id = ANY($1::uuid[])",
            ids,
        )
        depth = await conn.fetchval(
            "SELECT max(jsonb_array_length(category_path(category_id))) FROM products"
            " WHERE id = ANY($1::uuid[])",
            ids,
        )
        brands = await conn.fetchval(
            "SELECT count(DISTINCT brand_id) FROM products WHERE id = ANY($1::uuid[])", ids
        )
        rated = await conn.fetchval(
            "SELECT count(*) FROM products p WHERE review_count = (SELECT count(*) FROM reviews r"
            " WHERE r.product_id = p.id) AND review_count > 0 AND id = ANY($1::uuid[])",
            ids,
        )
    assert (
        demo["n"] == 10_000
        and demo["sellers"] == 1
        and demo["seller"] == str(seed_user_id("seller@shop.local"))
    )
    assert demo["variants"] and demo["images"]
    assert depth == 3 and brands >= 50 and rated > 1000


async def test_seeding_again_adds_nothing(seeded: asyncpg.Pool) -> None:
    async with seeded.acquire() as conn:
        before = dict(await conn.fetchrow(COUNTS))
        await seed.seed(seeded, CONFIG)
        assert dict(await conn.fetchrow(COUNTS)) == before


async def test_the_demo_catalog_is_searchable_and_browsable(
    client: httpx.AsyncClient, seeded: asyncpg.Pool
) -> None:
    found = (await client.get("/api/products", params={"search": "da lat laptop", "pageSize": 5})).json()
    assert found["totalCount"] > 0
    assert all("Đà Lạt" in p["name"] and "Laptop" in p["name"] for p in found["items"])
    tree = (await client.get("/api/categories")).json()
    electronics = next(c for c in tree if c["slug"] == "electronics")
    assert electronics["children"][0]["children"], "three levels"
    everything = (
        await client.get("/api/products", params={"categoryId": electronics["id"], "pageSize": 1})
    ).json()
    assert everything["totalCount"] > 500
    detail = await client.get(f"/api/products/{demo_product_id(1)}")
    assert detail.status_code == 200 and len(detail.json()["category"]["path"]) == 3
