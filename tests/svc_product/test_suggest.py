"""`GET /api/products/suggest?q=`: categories, brands and products by prefix and typo, ranked, at most 10."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.svc_product.conftest import new_brand, new_category, new_product, word


async def suggested(client: httpx.AsyncClient, q: str) -> list[tuple[str, str]]:
    response = await client.get("/api/products/suggest", params={"q": q})
    assert response.status_code == 200, response.text
    return [(s["kind"], s["name"]) for s in response.json()["suggestions"]]


async def test_categories_and_brands_come_first_then_products_starting_so_then_the_most_reviewed(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    w = word()
    category = await new_category(client, name=f"{w} Gear")
    await new_brand(client, name=f"{w} Labs")
    cover = await new_product(client, category["id"], name=f"Cover for {w} phones")
    plain = await new_product(client, category["id"], name=f"{w} Phone B")
    loved = await new_product(client, category["id"], name=f"{w} Phone A")
    await new_product(client, category["id"], name=f"{w} Phone Draft", status="draft")
    for product, reviews in ((cover, 9), (plain, 0), (loved, 3)):
        await db.execute("UPDATE products SET review_count = $2 WHERE id = $1::uuid", product["id"], reviews)
    assert await suggested(client, w[:8]) == [
        ("category", f"{w} Gear"),
        ("brand", f"{w} Labs"),
        ("product", f"{w} Phone A"),
        ("product", f"{w} Phone B"),
        ("product", f"Cover for {w} phones"),
    ]
    # Every word typed must start a word of the name; the last one as it is being typed.
    typo = w[:-1] + ("x" if w[-1] != "x" else "y")
    assert await suggested(client, f"{typo.upper()}  PHO") == [
        ("product", f"{w} Phone A"),
        ("product", f"{w} Phone B"),
        ("product", f"Cover for {w} phones"),
    ]


async def test_at_most_ten_and_a_new_product_shows_at_once(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    w = word()
    for number in range(11):
        await new_product(client, category["id"], name=f"{w} Widget {number}")
    assert len(await suggested(client, w)) == 10
    v = word()
    assert await suggested(client, v) == []
    await new_product(client, category["id"], name=f"{v} Gizmo")
    assert await suggested(client, v) == [("product", f"{v} Gizmo")]


async def test_the_answer_says_how_the_text_was_read(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products/suggest", params={"q": "  Cà  PHÊ%% "})
    assert response.json()["query"] == "cà phê"
    assert (await client.get("/api/products/suggest", params={"q": "%%"})).json() == {
        "query": "",
        "suggestions": [],
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": "  "}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "a", "limit": "3"}, "limit"),
        ({"q": ["a", "b"]}, "q"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/products/suggest", params=params)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
