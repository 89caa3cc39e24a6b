from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec

from protos import inventory_pb2 as pb
from svc_product.stock import product_levels
from tests.support import eventually
from tests.svc_product.conftest import StandInInventory, new_product


def level(product_id: str, available: int, variant_id: str = "") -> pb.StockLevel:
    """One stock row as svc_inventory's `GetInventory` returns it (no variant: the product's own)."""
    return pb.StockLevel(
        product_id=product_id,
        variant_id=variant_id,
        on_hand=available + 2,
        reserved=2,
        available=available,
        low_stock_threshold=5,
        updated_at="2025-05-01T00:00:00Z",
    )


async def stock_of(client: httpx.AsyncClient, product_id: str) -> Any:
    response = await client.get(f"/api/products/{product_id}")
    assert response.status_code == 200
    return response.json()["stock"]


async def test_the_detail_shows_the_stock_inventory_reports(
    client: httpx.AsyncClient, category: dict[str, Any], stand_in_inventory: StandInInventory
) -> None:
    product = await new_product(client, category["id"])
    stand_in_inventory.levels[product["id"]] = [level(product["id"], 7)]
    stock = await eventually(lambda: stock_of(client, product["id"]))
    assert stock == {"available": 7, "reserved": 2, "onHand": 9, "updatedAt": "2025-05-01T00:00:00Z"}


async def test_views_within_a_few_seconds_share_one_inventory_call(
    client: httpx.AsyncClient, category: dict[str, Any], stand_in_inventory: StandInInventory
) -> None:
    product = await new_product(client, category["id"])
    stand_in_inventory.levels[product["id"]] = [level(product["id"], 3)]
    await eventually(lambda: stock_of(client, product["id"]))
    calls = stand_in_inventory.calls
    views = await asyncio.gather(*(stock_of(client, product["id"]) for _ in range(30)))
    assert {v["available"] for v in views} == {3} and stand_in_inventory.calls == calls

    # Past its lifetime (1 s in these tests) the figure is refreshed behind the answers.
    stand_in_inventory.levels[product["id"]] = [level(product["id"], 1)]
    await asyncio.sleep(1.1)
    assert (await stock_of(client, product["id"]))["available"] == 3
    await eventually(lambda: _available_is(client, product["id"], 1))


async def test_the_stale_figures_of_many_products_are_refreshed_in_one_call(
    client: httpx.AsyncClient, category: dict[str, Any], stand_in_inventory: StandInInventory
) -> None:
    products = [(await new_product(client, category["id"]))["id"] for _ in range(5)]
    for i, product_id in enumerate(products):
        stand_in_inventory.levels[product_id] = [level(product_id, i)]
    for product_id in products:
        await eventually(lambda product_id=product_id: stock_of(client, product_id))
    for product_id in products:
        stand_in_inventory.levels[product_id] = [level(product_id, 10)]
    await asyncio.sleep(1.1)  # past the figures' lifetime (1 s in these tests)
    calls = stand_in_inventory.calls
    views = await asyncio.gather(*(stock_of(client, product_id) for product_id in products))
    assert [view["available"] for view in views] == [0, 1, 2, 3, 4]  # served while refreshed

    async def all_refreshed() -> bool:
        return all([await _available_is(client, product_id, 10) for product_id in products])

    await eventually(all_refreshed)
    assert stand_in_inventory.batches[calls:] == [products]  # one call carried the five


def test_a_product_with_variants_shows_their_units_summed_and_the_latest_change() -> None:
    rows = [level("p", 3, "v1"), level("p", 4, "v2"), level("p", 0, "v3"), level("q", 1)]
    rows[1].updated_at = "2025-06-01T08:30:00.250000Z"
    rows[2].updated_at = "2025-06-01T08:30:00Z"  # a whole second has no fraction, and is earlier
    figures = product_levels(rows)
    assert msgspec.json.decode(figures["p"]) == {
        "available": 7, "reserved": 6, "onHand": 13, "updatedAt": "2025-06-01T08:30:00.250000Z"
    }  # fmt: skip
    assert msgspec.json.decode(figures["q"])["available"] == 1 and set(figures) == {"p", "q"}


async def _available_is(client: httpx.AsyncClient, product_id: str, available: int) -> bool:
    stock = await stock_of(client, product_id)
    return stock is not None and stock["available"] == available


async def test_a_product_inventory_does_not_know_has_no_stock_figure(
    client: httpx.AsyncClient, category: dict[str, Any], stand_in_inventory: StandInInventory
) -> None:
    product = await new_product(client, category["id"])

    async def asked() -> bool:
        assert await stock_of(client, product["id"]) is None
        return stand_in_inventory.calls > 0

    await eventually(asked)


async def test_a_slow_inventory_does_not_hold_the_detail_up(
    client: httpx.AsyncClient, category: dict[str, Any], stand_in_inventory: StandInInventory
) -> None:
    # Far past svc_product's 0.15 s timeout: no figure ever comes back, and an answer that waited for
    # inventory could not come before it (the bound leaves room for a busy machine).
    stand_in_inventory.delay = 2.0
    product = await new_product(client, category["id"])
    stand_in_inventory.levels[product["id"]] = [level(product["id"], 5)]
    asked = stand_in_inventory.calls

    async def answered_while_inventory_was_asked() -> bool:
        started = time.perf_counter()
        assert await stock_of(client, product["id"]) is None
        assert time.perf_counter() - started < 1.0
        return stand_in_inventory.calls > asked

    await eventually(answered_while_inventory_was_asked)


async def test_the_detail_answers_without_stock_when_inventory_is_down(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    assert await stock_of(client, product["id"]) is None
    assert (await client.get(f"/api/products/{product['id']}")).json()["name"] == product["name"]
