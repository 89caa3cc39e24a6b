from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from svc_product import index
from tests.support import eventually
from tests.svc_product.conftest import admin, new_brand, new_category, new_product, seller, user, word


async def names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/products", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_a_category_lists_the_products_of_all_its_sub_categories(client: httpx.AsyncClient) -> None:
    top = await new_category(client)
    middle = await new_category(client, top["id"])
    leaf = await new_category(client, middle["id"])
    sibling = await new_category(client)
    for category, name in ((top, "top"), (middle, "middle"), (leaf, "leaf"), (sibling, "elsewhere")):
        await new_product(client, category["id"], name=name)
    assert sorted(await names(client, categoryId=top["id"])) == ["leaf", "middle", "top"]
    assert sorted(await names(client, categoryId=middle["id"])) == ["leaf", "middle"]
    assert await names(client, categoryId=leaf["id"]) == ["leaf"]


async def test_filters_combine(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    brand, other_brand = await new_brand(client), await new_brand(client)
    owner = seller()
    for name, price, brand_id, who in (
        ("cheap", 10, brand["id"], owner),
        ("middle", 50, brand["id"], owner),
        ("dear", 90, brand["id"], seller()),
        ("other brand", 50, other_brand["id"], owner),
    ):
        await new_product(client, category["id"], who, name=name, price=price, brandId=brand_id)
    c = category["id"]
    assert sorted(await names(client, categoryId=c, brandId=brand["id"])) == ["cheap", "dear", "middle"]
    assert sorted(await names(client, categoryId=c, minPrice="50")) == ["dear", "middle", "other brand"]
    assert await names(client, categoryId=c, brandId=brand["id"], minPrice="20", maxPrice="60") == ["middle"]
    assert sorted(await names(client, categoryId=c, sellerId=owner["X-User-Id"], maxPrice="50")) == [
        "cheap",
        "middle",
        "other brand",
    ]
    assert await names(client, categoryId=c, minPrice="50.01", maxPrice="89.99") == []


async def test_every_sort_order(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    made = []
    for name, price in (("b-lamp", 30), ("a-lamp", 20), ("c-lamp", 10)):
        made.append(await new_product(client, category["id"], name=name, price=price))
    for product, rating in zip(made, (5, 1, 3), strict=True):
        await client.post(f"/api/products/{product['id']}/reviews", json={"rating": rating}, headers=user())
    c = category["id"]
    assert await names(client, categoryId=c) == ["c-lamp", "a-lamp", "b-lamp"]  # newest first
    assert await names(client, categoryId=c, sortBy="createdAt", sortOrder="asc") == [
        "b-lamp",
        "a-lamp",
        "c-lamp",
    ]
    assert await names(client, categoryId=c, sortBy="price") == ["c-lamp", "a-lamp", "b-lamp"]
    assert await names(client, categoryId=c, sortBy="price", sortOrder="DESC") == [
        "b-lamp",
        "a-lamp",
        "c-lamp",
    ]
    assert await names(client, categoryId=c, sortBy="name") == ["a-lamp", "b-lamp", "c-lamp"]
    assert await names(client, categoryId=c, sortBy="rating") == ["b-lamp", "c-lamp", "a-lamp"]
    assert await names(client, categoryId=c, sortBy="rating", sortOrder="asc") == [
        "a-lamp",
        "c-lamp",
        "b-lamp",
    ]


async def test_pages_cover_the_list_exactly_once(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    for n in range(5):
        await new_product(client, category["id"], name=f"item {n}", price=n + 1)
    c = category["id"]

    async def page(number: int, size: int) -> dict[str, Any]:
        response = await client.get(
            "/api/products", params={"categoryId": c, "sortBy": "price", "page": number, "pageSize": size}
        )
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    first, last, beyond = await page(1, 2), await page(3, 2), await page(4, 2)
    assert [i["price"] for i in first["items"]] == [1, 2]
    assert (first["page"], first["pageSize"], first["totalCount"], first["totalPages"]) == (1, 2, 5, 3)
    assert [i["price"] for i in last["items"]] == [5] and last["totalPages"] == 3
    assert beyond["items"] == [] and beyond["totalCount"] == 5 and beyond["page"] == 4
    assert len((await page(1, 100))["items"]) == 5

    empty = await new_category(client)
    nothing = (await client.get("/api/products", params={"categoryId": empty["id"]})).json()
    assert nothing == {"items": [], "page": 1, "pageSize": 20, "totalCount": 0, "totalPages": 0}


async def test_fields_trim_each_item(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    product = await new_product(client, category["id"], price=12.5)
    response = await client.get(
        "/api/products", params={"categoryId": category["id"], "fields": "id,price,name"}
    )
    assert response.json()["items"] == [{"id": product["id"], "price": 12.5, "name": product["name"]}]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": "101"}, "pageSize"),
        ({"pageSize": "0"}, "pageSize"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "two"}, "page"),
        ({"minPrice": "abc"}, "minPrice"),
        ({"minPrice": "-5"}, "minPrice"),
        ({"maxPrice": "nan"}, "maxPrice"),
        ({"maxPrice": "inf"}, "maxPrice"),
        ({"minPrice": "10", "maxPrice": "5"}, "minPrice"),
        ({"categoryId": "electronics"}, "categoryId"),
        ({"brandId": "1"}, "brandId"),
        ({"sortBy": "popularity"}, "sortBy"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"status": "sold"}, "status"),
        ({"fields": "id,password"}, "fields"),
        ({"search": "x" * 101}, "search"),
        ({"category": "x"}, "category"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/products", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "ValidationError" and response.json()["details"][0]["field"] == field


async def test_a_repeated_parameter_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products?page=1&page=2")
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "page"


async def test_search_finds_partial_words_and_fragments(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    w = word()
    await new_product(client, category["id"], name=f"Ultralight Laptop {w}")
    await new_product(client, category["id"], name=f"Desk Lamp {w}", description="A laptop stand included")
    c = category["id"]
    assert await names(client, categoryId=c, search=f"lapt {w[:6]}") == [
        f"Ultralight Laptop {w}",
        f"Desk Lamp {w}",
    ]
    assert await names(client, categoryId=c, search="ultralig") == [f"Ultralight Laptop {w}"]
    assert await names(client, categoryId=c, search="tralig") == [f"Ultralight Laptop {w}"]  # inside a word
    # One letter from "laptop": read as it, so the lamp whose description says laptop comes too, after.
    assert await names(client, categoryId=c, search="aptop") == [f"Ultralight Laptop {w}", f"Desk Lamp {w}"]
    assert await names(client, categoryId=c, search="LAMP") == [f"Desk Lamp {w}"]
    assert await names(client, categoryId=c, search="ultralight lamp") == []  # every word must match


async def test_search_ignores_accents_both_ways(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    await new_product(client, category["id"], name="Café Sữa Đá")
    await new_product(client, category["id"], name="Creme Brulee")
    c = category["id"]
    assert await names(client, categoryId=c, search="cafe sua da") == ["Café Sữa Đá"]
    assert await names(client, categoryId=c, search="CAFÉ") == ["Café Sữa Đá"]
    assert await names(client, categoryId=c, search="crème brûlée") == ["Creme Brulee"]


@pytest.mark.parametrize(
    "search", ["'; DROP TABLE products; --", "%", "_", "\\", "lamp' OR '1'='1", "a:* | b", "!!&&||", "(x"]
)
async def test_sql_and_query_syntax_in_a_search_are_only_text(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any], search: str
) -> None:
    await new_product(client, category["id"], name="Plain lamp")
    response = await client.get("/api/products", params={"categoryId": category["id"], "search": search})
    assert response.status_code == 200 and response.json()["items"] == []
    assert (
        await db.fetchval("SELECT count(*) FROM products WHERE category_id = $1", uuid.UUID(category["id"]))
        == 1
    )


async def test_a_search_without_words_matches_its_text_literally(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    await new_product(client, category["id"], name="Juice 100% natural")
    await new_product(client, category["id"], name="Juice 1000 natural")
    assert await names(client, categoryId=category["id"], search="%") == ["Juice 100% natural"]
    assert sorted(await names(client, categoryId=category["id"], search="100")) == [
        "Juice 100% natural",
        "Juice 1000 natural",
    ]


async def test_the_list_says_sellers_and_admins_may_filter_by_status_only(client: httpx.AsyncClient) -> None:
    assert (
        await client.get("/api/products", params={"status": "inactive"}, headers=seller())
    ).status_code == 200
    assert (await client.get("/api/products", params={"status": "all"}, headers=admin())).status_code == 200
    assert (await client.get("/api/products", params={"status": "all"})).status_code == 403


async def test_a_search_is_ranked_alike_from_the_index_and_from_postgresql(
    client: httpx.AsyncClient, category: dict[str, Any], db: asyncpg.Connection
) -> None:
    w = word()
    made = [
        (f"{w} Desk", "A lamp for reading", 9),
        (f"Lamp {w}", "", 0),
        (f"Lampshade {w}", "", 4),
        (f"{w} Chair", "Goes with a lamp", 2),
        (f"Floor Lamp {w} Two", "", 5),
    ]
    for name, description, reviews in made:
        product = await new_product(client, category["id"], name=name, description=description)
        await db.execute("UPDATE products SET review_count = $2 WHERE id = $1::uuid", product["id"], reviews)
    # Every name with both words first, then by reviews; then those with the lamp only in the description.
    expected = [f"Floor Lamp {w} Two", f"Lampshade {w}", f"Lamp {w}", f"{w} Desk", f"{w} Chair"]
    await new_product(client, category["id"])  # a write: the index is read again, with the review counts

    async def index_current() -> bool:
        return index.holder.index is not None and index.holder.index.generation >= index.holder.generation

    await eventually(index_current)
    for params in ({}, {"sortBy": "price"}, {"sortBy": "name", "sortOrder": "desc"}):
        query = {"search": f"{w} lamp", "categoryId": category["id"], **params}
        # The public list from the process's index, the same list for an admin (status=all) from PostgreSQL.
        public = await client.get("/api/products", params=query)
        everyone = await client.get("/api/products", params={**query, "status": "all"}, headers=admin())
        ordered = [item["name"] for item in public.json()["items"]]
        assert ordered == [item["name"] for item in everyone.json()["items"]], params
        if not params:
            assert ordered == expected
