"""Typo tolerance: one or two wrong letters per word still find the product, below what matches as typed,
with `didYouMean` when only the correction found anything; the vocabulary follows the catalog's writes."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.svc_product.conftest import new_product, seller, word


async def search(client: httpx.AsyncClient, category: dict[str, Any], text: str) -> dict[str, Any]:
    response = await client.get("/api/products", params={"categoryId": category["id"], "search": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["items"]]


@pytest.mark.parametrize(
    ("typed", "edits"),
    [
        ("smrtphone", 1),  # a letter left out
        ("smartphome", 1),  # a letter wrong
        ("smartpphone", 1),  # a letter too many
        ("smartfone", 2),
        ("snartphome", 2),
        ("SMRTPHÓNE", 1),  # case and accents are still ignored
    ],
)
async def test_a_word_with_one_or_two_wrong_letters_finds_its_product(
    client: httpx.AsyncClient, category: dict[str, Any], typed: str, edits: int
) -> None:
    w = word()
    await new_product(client, category["id"], name=f"Galaxy Smartphone {w}")
    body = await search(client, category, f"{typed} {w}")
    assert names(body) == [f"Galaxy Smartphone {w}"]
    assert body["didYouMean"] == f"smartphone {w}"


async def test_matches_as_typed_rank_above_matches_of_the_correction(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    w = word()
    # "smartfone" is no word of any name, but this stand's description uses it as typed.
    await new_product(client, category["id"], name=f"Galaxy Smartphone {w}")
    await new_product(client, category["id"], name=f"Desk Stand {w}", description="Holds any smartfone")
    body = await search(client, category, f"smartfone {w}")
    assert names(body) == [f"Desk Stand {w}", f"Galaxy Smartphone {w}"]
    assert "didYouMean" not in body  # the search as typed found something


async def test_short_words_and_words_too_far_from_any_are_not_corrected(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    w = word()
    await new_product(client, category["id"], name=f"Red Lamp {w}")
    assert names(await search(client, category, f"rad {w}")) == []  # 3 letters: taken as typed
    assert names(await search(client, category, f"lmpa {w}")) == []  # 4 letters, 2 edits away
    nothing = await search(client, category, f"zzzzzzzz {w}")
    assert nothing["totalCount"] == 0 and "didYouMean" not in nothing


async def test_the_vocabulary_follows_renames_and_deletions(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any]
) -> None:
    w, v = word(), word()
    owner = seller()
    product = await new_product(client, category["id"], owner, name=f"Teapot {w}")

    async def count(text: str) -> int | None:
        value: int | None = await db.fetchval("SELECT products FROM search_words WHERE word = $1", text)
        return value

    assert await count(w) == 1
    path = f"/api/products/{product['id']}"
    assert (await client.patch(path, json={"name": f"Teapot {v}"}, headers=owner)).status_code == 200
    assert (await count(w), await count(v)) == (0, 1)
    # A new rating is no new word: the vocabulary is left alone (no lock on its rows).
    await db.execute("UPDATE products SET rating = 4 WHERE id = $1::uuid", product["id"])
    assert await count(v) == 1
    assert (await client.delete(path, headers=owner)).status_code == 204
    assert await count(v) == 0
    # A word with no product left is never offered as a correction.
    assert names(await search(client, category, v[:-1] + "x")) == []
