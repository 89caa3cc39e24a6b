"""Facets: counts per category (tree-aware), brand, price band, rating band, variant attribute and stock,
each leaving its own filter out, equal to a brute-force count over the products for any filter combination."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from svc_product.caching import LISTS
from svc_product.facets import PRICE_BANDS, RATING_BANDS
from tests.support import drained, eventually, publisher
from tests.svc_product.conftest import admin, new_brand, new_category, new_product, word

FACETS = "category,brand,price,rating,attributes,stock"
COLOURS, SIZES = ("Red", "Blue"), ("S", "M")
PRICES = (50_000, 150_000, 700_000, 2_000_000, 7_000_000, 20_000_000)


@dataclass(frozen=True)
class Item:
    """What the brute force knows of a product it created."""

    id: str
    categories: frozenset[str]  # its category and every one above it
    brand: str | None
    price: float
    rating: float
    variants: tuple[dict[str, str], ...]
    active: bool
    in_stock: bool
    seller: str


@dataclass
class Shop:
    word: str
    tree: dict[str, str | None]  # category id -> parent id
    brands: list[str]
    items: list[Item]


@pytest.fixture(scope="module")
async def shop(client: httpx.AsyncClient, db: asyncpg.Connection) -> Shop:
    return await build_shop(client, db)


async def build_shop(client: httpx.AsyncClient, db: asyncpg.Connection) -> Shop:
    """A tree root > (a > a1, b), three brands and products spread over them, one of them a draft."""
    root = (await new_category(client))["id"]
    a = (await new_category(client, root))["id"]
    b = (await new_category(client, root))["id"]
    a1 = (await new_category(client, a))["id"]
    tree = {root: None, a: root, b: root, a1: a}
    brands = [(await new_brand(client))["id"] for _ in range(3)]
    rng, w, items = random.Random(19), word(), []
    for number in range(16):
        category, brand = rng.choice(list(tree)), rng.choice([*brands, None])
        price, rating = rng.choice(PRICES), rng.choice((0, 1.5, 2, 3.25, 4, 4.8, 5))
        variants = tuple(
            {"colour": rng.choice(COLOURS), "size": rng.choice(SIZES)} for _ in range(rng.randint(0, 2))
        )
        status = "draft" if number == 0 else "active"
        created = await new_product(
            client,
            category,
            name=f"Gadget {number} {w}",
            price=price,
            brandId=brand,
            status=status,
            variants=[
                {"sku": f"{w}-{number}-{i}", "price": price, "attributes": v} for i, v in enumerate(variants)
            ],
        )
        # As svc_inventory's announcements leave them (tests/e2e/test_catalog.py sends real ones).
        in_stock = rng.random() < 0.6
        await db.execute(
            "UPDATE products SET rating = $2, in_stock = $3 WHERE id = $1::uuid",
            created["id"],
            rating,
            in_stock,
        )
        above = frozenset(_up(tree, category))
        items.append(
            Item(
                created["id"], above, brand, price, rating, variants, status == "active", in_stock,
                created["sellerId"],
            )
        )  # fmt: skip
    # Changed behind the service's back: the lists (and the process's index) learn of it as of a write.
    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.incr(LISTS)
    await redis.aclose()
    return Shop(w, tree, brands, items)


def _up(tree: Mapping[str, str | None], category: str | None) -> Iterator[str]:
    while category is not None:
        yield category
        category = tree[category]


def _attributes(raw: str | None) -> dict[str, set[str]]:
    chosen: dict[str, set[str]] = {}
    for pair in (raw or "").split(","):
        if pair:
            name, _, value = pair.partition(":")
            chosen.setdefault(name, set()).add(value)
    return chosen


def _variant_ok(variant: Mapping[str, str], chosen: Mapping[str, set[str]], leave_out: str | None) -> bool:
    return all(variant.get(name) in values for name, values in chosen.items() if name != leave_out)


def _passes(item: Item, params: Mapping[str, Any], leave_out: str | None = None) -> bool:
    """Whether `item` passes every filter of `params` but the one of facet `leave_out`."""
    checks = {
        "category": "categoryId" not in params or params["categoryId"] in item.categories,
        "brand": "brandId" not in params or params["brandId"] == item.brand,
        "price": params.get("minPrice", 0) <= item.price <= params.get("maxPrice", float("inf")),
        "rating": item.rating >= params.get("minRating", 0),
        "attributes": "attributes" not in params
        or any(_variant_ok(v, _attributes(params["attributes"]), None) for v in item.variants),
        "stock": "inStock" not in params or item.in_stock == (params["inStock"] == "true"),
        "seller": "sellerId" not in params or item.seller == params["sellerId"],
    }
    listed = item.active or params.get("status") == "all"
    return listed and all(ok for name, ok in checks.items() if name != leave_out)


def brute_force(shop: Shop, params: Mapping[str, Any]) -> dict[str, Any]:
    """The facets, counted one product at a time, in the shape the API answers (lists as dicts)."""

    def kept(facet: str) -> list[Item]:
        return [item for item in shop.items if _passes(item, params, facet)]

    bands = [*zip(PRICE_BANDS, [*PRICE_BANDS[1:], None], strict=True)]
    chosen = _attributes(params.get("attributes"))
    attributes: Counter[tuple[str, str]] = Counter()
    for item in kept("attributes"):
        pairs = {
            (name, value)
            for variant in item.variants
            for name, value in variant.items()
            if _variant_ok(variant, chosen, name)
        }
        attributes.update(pairs)
    return {
        "category": dict(Counter(c for item in kept("category") for c in item.categories)),
        "brand": dict(Counter(item.brand for item in kept("brand") if item.brand is not None)),
        "price": [
            sum(1 for i in kept("price") if low <= i.price and (high is None or i.price < high))
            for low, high in bands
        ],
        "rating": [sum(1 for i in kept("rating") if i.rating >= low) for low in RATING_BANDS],
        "attributes": dict(attributes),
        "stock": [sum(1 for i in kept("stock") if i.in_stock == flag) for flag in (True, False)],
    }


def answered(facets: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "category": {c["id"]: c["count"] for c in facets["category"]},
        "brand": {b["id"]: b["count"] for b in facets["brand"]},
        "price": [band["count"] for band in facets["price"]],
        "rating": [band["count"] for band in facets["rating"]],
        "attributes": {(a["name"], a["value"]): a["count"] for a in facets["attributes"]},
        "stock": [band["count"] for band in facets["stock"]],
    }


def _consistent(params: dict[str, Any]) -> bool:
    return bool(params.get("minPrice", 0) <= params.get("maxPrice", float("inf")))


def filters(shop: Shop) -> st.SearchStrategy[dict[str, Any]]:
    pairs = [f"colour:{c}" for c in COLOURS] + [f"size:{s}" for s in SIZES]
    optional: dict[str, st.SearchStrategy[Any]] = {
        "categoryId": st.sampled_from(list(shop.tree)),
        "brandId": st.sampled_from(shop.brands),
        "minPrice": st.sampled_from((0, 100_000, 600_000, 5_000_000)),
        "maxPrice": st.sampled_from((120_000, 1_000_000, 30_000_000)),
        "minRating": st.sampled_from((1, 2.5, 4)),
        "attributes": st.lists(st.sampled_from(pairs), min_size=1, max_size=3, unique=True).map(",".join),
        "inStock": st.sampled_from(("true", "false")),
        "sellerId": st.sampled_from([item.seller for item in shop.items[:3]]),
        # Beyond active products the list is read from PostgreSQL, not the process's index: both must hold.
        "status": st.just("all"),
    }
    return st.fixed_dictionaries({}, optional=optional).filter(_consistent)


async def test_facet_counts_equal_a_brute_force_count_for_any_filters(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    loop = asyncio.get_running_loop()

    async def check(params: dict[str, Any]) -> None:
        response = await client.get(
            "/api/products",
            params={**params, "search": shop.word, "facets": FACETS, "pageSize": 100},
            headers=admin(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalCount"] == sum(_passes(item, params) for item in shop.items), params
        assert [band["inStock"] for band in body["facets"]["stock"]] == [True, False]
        assert answered(body["facets"]) == brute_force(shop, params), params

    # Hypothesis drives a plain function; the service answers on the test's event loop meanwhile.
    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(params=filters(shop))
    def property_holds(params: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(check(params), loop).result()

    await asyncio.to_thread(property_holds)


async def test_facets_come_only_when_asked_and_are_cached_and_invalidated_with_the_list(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any]
) -> None:
    w, brand = word(), await new_brand(client)
    product = await new_product(client, category["id"], name=f"Kettle {w}", brandId=brand["id"])
    plain = (await client.get("/api/products", params={"search": w})).json()
    assert "facets" not in plain and "didYouMean" not in plain
    # A list without a search is cached in Redis (a search is answered from the process's index).
    params = {"categoryId": category["id"], "facets": "brand"}
    first = (await client.get("/api/products", params=params)).json()["facets"]
    assert first == {"brand": [{"id": brand["id"], "name": brand["name"], "count": 1}]}
    # Changed behind the service's back: the cached answer stays until the service itself changes something.
    await db.execute("UPDATE products SET brand_id = NULL WHERE id = $1::uuid", product["id"])
    assert (await client.get("/api/products", params=params)).json()["facets"] == first
    renamed = await client.patch(f"/api/brands/{brand['id']}", json={"name": f"Renamed {w}"}, headers=admin())
    assert renamed.status_code == 200
    assert (await client.get("/api/products", params=params)).json()["facets"] == {"brand": []}


async def test_facets_count_what_a_corrected_search_found(client: httpx.AsyncClient, shop: Shop) -> None:
    typo = "gadgte"  # "gadget", one letter swapped: found through its correction
    params = {"search": f"{typo} {shop.word}", "facets": "brand,rating", "pageSize": 100}
    body = (await client.get("/api/products", params=params)).json()
    assert body["didYouMean"] == f"gadget {shop.word}"
    assert body["totalCount"] == sum(item.active for item in shop.items)
    others: dict[str, list[Any]] = {"category": [], "price": [], "attributes": [], "stock": []}
    assert answered({**body["facets"], **others}) == {
        **brute_force(shop, {}),
        "category": {},
        "price": [],
        "attributes": {},
        "stock": [],
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"facets": "colour"}, "facets"),
        ({"facets": ""}, None),
        ({"minRating": "6"}, "minRating"),
        ({"minRating": "nan"}, "minRating"),
        ({"attributes": "colour"}, "attributes"),
        ({"attributes": ":Red"}, "attributes"),
        ({"inStock": "yes"}, "inStock"),
    ],
)
async def test_bad_facet_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, params: dict[str, str], field: str | None
) -> None:
    response = await client.get("/api/products", params=params)
    if field is None:
        assert response.status_code == 200 and "facets" not in response.json()
    else:
        assert response.status_code == 400 and response.json()["details"][0]["field"] == field


async def test_availability_announcements_move_a_product_between_the_stock_counts(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    w = word()
    product = await new_product(client, category["id"], name=f"Lantern {w}")
    params = {"search": w, "facets": "stock"}

    async def counts(**filters: str) -> tuple[list[int], int]:
        body = (await client.get("/api/products", params={**params, **filters})).json()
        return [band["count"] for band in body["facets"]["stock"]], body["totalCount"]

    # Nothing on hand yet: svc_inventory starts a new product at 0.
    assert await counts() == ([0, 1], 1)
    assert await counts(inStock="true") == ([0, 1], 0)
    queue = "product.inventory.availability-changed"
    now = datetime.now(UTC)

    def announcement(available: bool, at: datetime) -> dict[str, object]:
        return {"productId": product["id"], "available": available, "occurredAt": at.isoformat()}

    async def counted_as(expected: list[int]) -> bool:
        return (await counts())[0] == expected

    async with publisher(queue) as publish:
        stocked = {"eventId": str(uuid.uuid4()), **announcement(True, now)}
        for _ in range(2):  # a redelivery changes nothing more
            await publish("inventory.exchange", "inventory.availability-changed", stocked)
        await eventually(lambda: counted_as([1, 0]))
        assert await counts(inStock="true") == ([1, 0], 1)
        await publish(
            "inventory.exchange",
            "inventory.availability-changed",
            announcement(False, now + timedelta(seconds=1)),
        )
        await eventually(lambda: counted_as([0, 1]))
        # An announcement older than the last one, arriving late, does not bring the stock back.
        await publish(
            "inventory.exchange",
            "inventory.availability-changed",
            announcement(True, now - timedelta(days=1)),
        )
        await eventually(lambda: drained(queue))
    assert await counts(inStock="false") == ([0, 1], 1)
