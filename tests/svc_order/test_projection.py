"""svc_order's projection of the catalog: carts and checkouts priced from order_db, kept from product events.

Against the real svc_product (its events through RabbitMQ) and, where a test must show that no catalog
call is made, a second svc_order whose catalog address is closed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import Publish, drained, eventually, identity, publisher
from tests.svc_order.conftest import ADMIN, Shop, buyer, closed_address, order_app

QUEUES = ("order.product.created", "order.product.updated", "order.product.deleted")


@pytest.fixture(scope="module")
async def product_events(shop: Shop) -> AsyncIterator[Publish]:
    """Publishes product events as svc_product's relay would, once svc_order consumes them."""
    async with publisher("order.product.updated") as send:
        yield send


async def projected(shop: Shop, product_id: str) -> dict[str, Any] | None:
    row = await shop.db.fetchrow(
        "SELECT version, for_sale, price::float8 AS price, name FROM catalog_products WHERE product_id = $1",
        uuid.UUID(product_id),
    )
    return dict(row) if row is not None else None


async def projected_becomes(shop: Shop, product_id: str, **expected: Any) -> None:
    async def reached() -> bool:
        row = await projected(shop, product_id)
        return row is not None and all(row[k] == v for k, v in expected.items())

    await eventually(reached)


def product_event(product_id: uuid.UUID, version: int, price: float, **fields: Any) -> dict[str, Any]:
    """A product event's body as svc_product publishes it."""
    return {
        "productId": str(product_id),
        "sellerId": str(uuid.uuid4()),
        "name": f"Projected {version}",
        "slug": f"projected-{product_id.hex[:8]}",
        "price": price,
        "status": "active",
        "categoryId": str(uuid.uuid4()),
        "brandId": None,
        "image": None,
        "version": version,
        "variants": [],
        **fields,
    }


async def test_a_cart_is_priced_without_the_catalog_once_the_product_is_projected(shop: Shop) -> None:
    product = await shop.new_product(price=150_000)
    await projected_becomes(shop, product, version=1, for_sale=True, price=150_000)
    unprojected = await shop.new_product(price=90_000)
    await projected_becomes(shop, unprojected, version=1)
    await shop.db.execute("DELETE FROM catalog_products WHERE product_id = $1", uuid.UUID(unprojected))
    who = buyer()

    async with order_app(shop.deps, ORDER_PRODUCT_URL=f"http://{closed_address()}") as no_catalog:
        added = await no_catalog.post(
            "/api/cart/items", json={"productId": product, "quantity": 2}, headers=who
        )
        assert added.status_code == 200, added.text
        assert added.json()["subtotal"] == 300_000
        placed = await shop.checkout(who, client=no_catalog)
        assert placed.status_code == 201, placed.text
        assert placed.json()["subtotal"] == 300_000

        # A product the projection does not know needs the catalog: unreachable, that is a 503.
        unknown = await no_catalog.post("/api/cart/items", json={"productId": unprojected}, headers=who)
        assert unknown.status_code == 503, unknown.text


async def test_a_product_the_projection_lacks_is_read_from_the_catalog_and_kept(shop: Shop) -> None:
    product = await shop.new_product(price=70_000)
    await projected_becomes(shop, product, version=1)
    renamed = await shop.product.patch(f"/api/products/{product}", json={"price": 75_000}, headers=ADMIN)
    assert renamed.status_code == 200, renamed.text
    await projected_becomes(shop, product, version=2, price=75_000)
    # As after a fresh deploy: the table empty for this product, its events long consumed.
    await shop.db.execute("DELETE FROM catalog_products WHERE product_id = $1", uuid.UUID(product))
    who = buyer()

    added = await shop.order.post("/api/cart/items", json={"productId": product}, headers=who)

    assert added.status_code == 200, added.text
    assert added.json()["subtotal"] == 75_000
    # Kept with the catalog's version, so an older event arriving now changes nothing (next test).
    assert await projected(shop, product) == {
        "version": 2,
        "for_sale": True,
        "price": 75_000,
        "name": added.json()["items"][0]["productName"],
    }


async def test_events_out_of_order_leave_the_newest_version(shop: Shop, product_events: Publish) -> None:
    product = uuid.uuid4()  # known to the projection only through these events
    await product_events("product.exchange", "product.updated", product_event(product, 3, 300_000))
    await projected_becomes(shop, str(product), version=3, price=300_000)

    for version, price in ((2, 200_000), (1, 100_000), (3, 999_000)):  # late ones, and a repeated version
        await product_events("product.exchange", "product.updated", product_event(product, version, price))
    await eventually(lambda: drained(*QUEUES))

    assert await projected(shop, str(product)) == {
        "version": 3,
        "for_sale": True,
        "price": 300_000,
        "name": "Projected 3",
    }
    # What a buyer pays is the projection's price, with no catalog that knows the product.
    added = await shop.order.post("/api/cart/items", json={"productId": str(product)}, headers=buyer())
    assert added.status_code == 200, added.text
    assert added.json()["subtotal"] == 300_000


async def test_a_price_change_reaches_carts_and_the_checkout_charges_it(shop: Shop) -> None:
    product = await shop.new_product(price=100_000)
    who = buyer()
    await shop.fill(who, (product, 1))

    changed = await shop.product.patch(f"/api/products/{product}", json={"price": 120_000}, headers=ADMIN)
    assert changed.status_code == 200, changed.text

    async def repriced() -> bool:
        cart = (await shop.order.get("/api/cart", headers=who)).json()
        return bool(cart["subtotal"] == 120_000)

    await eventually(repriced)
    placed = await shop.checkout(who)
    assert placed.status_code == 201, placed.text
    order = await shop.order_of(who, placed.json()["orderId"])
    assert [item["unitPrice"] for item in order["items"]] == [120_000]


async def test_a_variant_is_priced_from_the_event_that_changed_it(shop: Shop) -> None:
    sku = f"V{uuid.uuid4().hex[:6]}"
    product = await shop.new_product(price=100_000, variants=[{"sku": sku, "name": "Big", "price": 130_000}])
    variant = (await shop.product.get(f"/api/products/{product}")).json()["variants"][0]["id"]
    await projected_becomes(shop, product, version=1)
    changed = await shop.product.patch(
        f"/api/products/{product}",
        json={"variants": [{"sku": sku, "name": "Bigger", "price": 140_000}]},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    await projected_becomes(shop, product, version=2)

    who = buyer()
    async with order_app(shop.deps, ORDER_PRODUCT_URL=f"http://{closed_address()}") as no_catalog:
        added = await no_catalog.post(
            "/api/cart/items", json={"productId": product, "variantId": variant}, headers=who
        )
        lacking = await no_catalog.post(
            "/api/cart/items", json={"productId": product, "variantId": str(uuid.uuid4())}, headers=who
        )
    assert added.status_code == 200, added.text
    line = added.json()["items"][0]
    assert (line["variantName"], line["unitPrice"]) == ("Bigger", 140_000)
    # A variant the projected product lacks is refused from the projection too, and adds no line.
    assert lacking.status_code == 400, lacking.text
    cart = (await shop.order.get("/api/cart", headers=who)).json()
    assert [(item["variantId"], item["quantity"]) for item in cart["items"]] == [(variant, 1)]


async def test_a_deleted_product_can_be_neither_added_nor_checked_out(shop: Shop) -> None:
    seller = identity("Seller")
    product = await shop.new_product(seller=seller)
    who = buyer()
    await shop.fill(who, (product, 1))
    deleted = await shop.product.delete(f"/api/products/{product}", headers=seller)
    assert deleted.status_code == 204, deleted.text
    await projected_becomes(shop, product, version=2, for_sale=False)

    refused = await shop.order.post("/api/cart/items", json={"productId": product}, headers=buyer())
    assert refused.status_code == 422, refused.text
    cart = (await shop.order.get("/api/cart", headers=who)).json()
    assert cart["items"][0]["available"] is False
    checkout = await shop.checkout(who)
    assert checkout.status_code == 422 and checkout.json()["details"][0]["field"] == product


async def test_an_event_without_a_version_makes_the_product_read_from_the_catalog_again(
    shop: Shop, product_events: Publish
) -> None:
    product = await shop.new_product(price=50_000)
    await projected_becomes(shop, product, version=1, price=50_000)
    older_publisher = product_event(uuid.UUID(product), 0, 1)  # a svc_product without version and variants
    del older_publisher["version"], older_publisher["variants"]

    await product_events("product.exchange", "product.updated", older_publisher)

    async def forgotten() -> bool:
        return await projected(shop, product) is None

    await eventually(forgotten)
    added = await shop.order.post("/api/cart/items", json={"productId": product}, headers=buyer())
    assert added.status_code == 200, added.text
    assert added.json()["subtotal"] == 50_000
    assert (await projected(shop, product) or {}).get("version") == 1
