"""The search index follows writes: a product created, changed or deleted is found or gone through search
and suggestions as soon as the write is answered, by updates that read only what changed (the catalog is
not read whole again), and facet counts and sort orders stay equal to SQL's with writes in between."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from svc_product import index
from svc_product.caching import LISTS
from tests.support import eventually
from tests.svc_product.conftest import admin, new_product, seller, word
from tests.svc_product.test_facets import (
    COLOURS,
    FACETS,
    PRICES,
    SIZES,
    Shop,
    _passes,
    answered,
    brute_force,
    build_shop,
    filters,
)

WHOLE_READS = "shop_catalog_index_rebuilds_total"
UPDATES = "shop_catalog_index_updates_total"
# Names that PostgreSQL's collation orders otherwise than bytes would (case, accents, punctuation).
NAMES = ("Anvil", "anvil", "Émile", "Emile", "zebra", "Zebra", "apple-pie", "Apple Pie", "Bench", "bench")
SORTS = {"name": "p.name", "price": "p.price", "rating": "p.rating", "createdAt": "p.created_at"}


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def found(client: httpx.AsyncClient, **params: Any) -> list[str]:
    body = (await client.get("/api/products", params={"fields": "id", "pageSize": 100, **params})).json()
    return [item["id"] for item in body["items"]]


async def suggested(client: httpx.AsyncClient, text: str) -> list[str]:
    body = (await client.get("/api/products/suggest", params={"q": text})).json()
    return [s["id"] for s in body["suggestions"] if s["kind"] == "product"]


async def index_read(client: httpx.AsyncClient) -> None:
    """Wait until the process holds a current index (its first is read whole)."""

    async def current() -> bool:
        await found(client, search=word())
        return index.holder.current() is not None

    await eventually(current)


async def another_process_wrote() -> None:
    """What a write in another process does after its commit: it moves the lists' version in Redis."""
    redis = Redis.from_url(os.environ["REDIS_URL"])
    await redis.incr(LISTS)
    await redis.aclose()


async def test_a_product_is_found_as_soon_as_it_is_written_and_gone_as_soon_as_it_is_deleted(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    await index_read(client)
    whole_reads, updates = await metric(client, WHOLE_READS), await metric(client, UPDATES)
    owner, w, renamed = seller(), word(), word()
    product = await new_product(client, category["id"], owner, name=f"Lantern {w}", price=120_000)
    assert await found(client, search=w) == [product["id"]]
    assert await suggested(client, f"lantern {w}") == [product["id"]]
    assert await found(client, search=w, maxPrice=100_000) == []

    changes = {"name": f"Lamp {renamed}", "price": 90_000}
    patched = await client.patch(f"/api/products/{product['id']}", json=changes, headers=owner)
    assert patched.status_code == 200, patched.text
    assert await found(client, search=w) == []
    assert await found(client, search=renamed, maxPrice=100_000) == [product["id"]]
    assert await suggested(client, f"lamp {renamed}") == [product["id"]]

    assert (await client.delete(f"/api/products/{product['id']}", headers=owner)).status_code == 204
    assert await found(client, search=renamed) == []
    assert await suggested(client, f"lamp {renamed}") == []
    assert await metric(client, WHOLE_READS) == whole_reads
    assert await metric(client, UPDATES) >= updates + 3


async def test_after_many_updates_the_catalog_is_read_whole_in_the_background_and_still_found(
    client: httpx.AsyncClient, category: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    await index_read(client)
    monkeypatch.setattr(index, "COMPACT_AFTER", 2)
    whole_reads, w = await metric(client, WHOLE_READS), word()
    made = [await new_product(client, category["id"], name=f"Stool {n} {w}") for n in range(4)]
    expected = [product["id"] for product in made]
    # Every answer meanwhile is right, from the updated index or the whole one that replaces it.
    assert await found(client, search=w, sortBy="name") == expected

    async def read_whole() -> bool:
        return await metric(client, WHOLE_READS) > whole_reads and index.holder.current() is not None

    await eventually(read_whole)
    assert await found(client, search=w, sortBy="name") == expected


async def test_an_index_read_whole_holds_no_reference_cycle_so_freezing_it_leaks_nothing(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    # The service freezes each index it reads whole (gc.freeze): the collector never looks at it again,
    # so one that held a cycle would never be freed once replaced; reference counting must free it all.
    await new_product(client, category["id"], name=f"Chair {word()}")
    pool = await asyncpg.create_pool(os.environ["PRODUCT_DATABASE_URL"], min_size=1, max_size=1)
    whole = await index.read(pool)
    await pool.close()
    assert whole.slot_of
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable lands in gc.garbage
    try:
        del whole
        gc.collect()
        left = {type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("svc_product.")}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not left


async def test_a_write_of_another_process_is_searched_as_soon_as_it_moved_the_lists_version(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any]
) -> None:
    w, other = word(), word()
    product = await new_product(client, category["id"], name=f"Kettle {w}")
    assert await found(client, search=w) == [product["id"]]

    await db.execute("UPDATE products SET name = $2 WHERE id = $1::uuid", product["id"], f"Kettle {other}")
    await another_process_wrote()
    assert await found(client, search=other) == [product["id"]]
    assert await found(client, search=w) == []
    # Suggestions learn of it from the `follow` job, which asks Redis every 0.1 s.
    await eventually(lambda: _suggests(client, f"kettle {other}", [product["id"]]))

    await db.execute("UPDATE products SET deleted_at = now() WHERE id = $1::uuid", product["id"])
    await another_process_wrote()
    assert await found(client, search=other) == []
    await eventually(lambda: _suggests(client, f"kettle {other}", []))


async def _suggests(client: httpx.AsyncClient, text: str, expected: list[str]) -> bool:
    return await suggested(client, text) == expected


@pytest.fixture(scope="module")
async def written(client: httpx.AsyncClient, db: asyncpg.Connection) -> Shop:
    """The facet tests' shop, of its own: this module's writes leave test_facets' alone."""
    return await build_shop(client, db)


def changes(shop: Shop) -> st.SearchStrategy[tuple[int, str, Any]]:
    """(which item, what, to what): one write to one of the shop's products."""
    variant = st.fixed_dictionaries(
        {"colour": st.sampled_from((*COLOURS, "Green")), "size": st.sampled_from((*SIZES, "XL"))}
    )
    what: dict[str, st.SearchStrategy[Any]] = {
        "price": st.sampled_from(PRICES),
        "rating": st.sampled_from((0, 1.5, 3.25, 4.8)),
        "in_stock": st.booleans(),
        "category_id": st.sampled_from(list(shop.tree)),
        "brand_id": st.sampled_from([*shop.brands, None]),
        "status": st.sampled_from(("active", "inactive")),
        "variants": st.lists(variant, max_size=2).map(tuple),
        "name": st.sampled_from(NAMES),
    }
    return st.tuples(
        st.integers(0, len(shop.items) - 1),
        st.one_of([st.tuples(st.just(field), values) for field, values in what.items()]),
    ).map(lambda change: (change[0], *change[1]))


async def write(db: asyncpg.Connection, shop: Shop, number: int, field: str, value: Any) -> None:
    """`field` of the shop's item `number` set to `value` in product_db, and in `shop`."""
    item = shop.items[number]
    product = uuid.UUID(item.id)
    if field == "variants":
        async with db.transaction():
            await db.execute("DELETE FROM product_variants WHERE product_id = $1", product)
            for position, attributes in enumerate(value):
                await db.execute(
                    "INSERT INTO product_variants (id, product_id, position, sku, name, price, attributes)"
                    " VALUES ($1, $2, $3, $4, 'variant', 1, $5::text::jsonb)",
                    uuid.uuid4(), product, position, f"{item.id}-{uuid.uuid4().hex}", json.dumps(attributes),
                )  # fmt: skip
        changed = dataclasses.replace(item, variants=value)
    elif field == "name":
        await db.execute("UPDATE products SET name = $2 WHERE id = $1", product, f"{value} {shop.word}")
        changed = item
    else:
        await db.execute(f"UPDATE products SET {field} = $2 WHERE id = $1", product, value)
        changed = {
            "price": lambda: dataclasses.replace(item, price=value),
            "rating": lambda: dataclasses.replace(item, rating=value),
            "in_stock": lambda: dataclasses.replace(item, in_stock=value),
            "category_id": lambda: dataclasses.replace(item, categories=frozenset(_up(shop, value))),
            "brand_id": lambda: dataclasses.replace(item, brand=value),
            "status": lambda: dataclasses.replace(item, active=value == "active"),
        }[field]()
    shop.items[number] = changed
    await another_process_wrote()


def _up(shop: Shop, category: str | None) -> list[str]:
    above = []
    while category is not None:
        above.append(category)
        category = shop.tree[category]
    return above


async def test_facets_and_orders_equal_sql_with_writes_in_between(
    client: httpx.AsyncClient, db: asyncpg.Connection, written: Shop
) -> None:
    loop = asyncio.get_running_loop()
    await index_read(client)
    whole_reads, updates = await metric(client, WHOLE_READS), await metric(client, UPDATES)
    writes = 0

    async def check(
        change: tuple[int, str, Any], params: dict[str, Any], sort: str, descending: bool
    ) -> None:
        nonlocal writes
        await write(db, written, *change)
        writes += 1
        query = {**params, "search": written.word, "facets": FACETS, "pageSize": 100}
        response = await client.get("/api/products", params=query, headers=admin())
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalCount"] == sum(_passes(item, params) for item in written.items), (change, params)
        assert answered(body["facets"]) == brute_force(written, params), (change, params)
        order = "desc" if descending else "asc"
        listed = await found(client, search=written.word, sortBy=sort, sortOrder=order)
        direction = " DESC" if descending else ""
        expected = await db.fetch(
            "SELECT id::text FROM products p WHERE p.id = ANY($1::uuid[])"
            " AND p.deleted_at IS NULL AND p.status = 'active'"
            f" ORDER BY {SORTS[sort]}{direction}, p.id{direction}",
            [item.id for item in written.items],
        )
        assert listed == [row["id"] for row in expected], (change, sort, order)

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        change=changes(written),
        params=filters(written),
        sort=st.sampled_from(sorted(SORTS)),
        descending=st.booleans(),
    )
    def property_holds(
        change: tuple[int, str, Any], params: dict[str, Any], sort: str, descending: bool
    ) -> None:
        asyncio.run_coroutine_threadsafe(check(change, params, sort, descending), loop).result()

    await asyncio.to_thread(property_holds)
    # The writes were updates of the index (one may bring in several), none a read of the whole catalog.
    assert await metric(client, WHOLE_READS) == whole_reads
    assert await metric(client, UPDATES) >= updates + writes / 2
