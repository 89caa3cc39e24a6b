"""The cart: lines in PostgreSQL, priced from the catalog."""

from __future__ import annotations

import uuid

from tests.svc_order.conftest import Shop, buyer, order_app


async def test_a_buyer_adds_products_and_sees_them_at_current_prices(shop: Shop) -> None:
    who = buyer()
    cheap = await shop.new_product(price=120_000, images=[{"url": "https://img.test/a.png"}])
    dear = await shop.new_product(price=450_000.5)
    await shop.fill(who, (cheap, 2), (dear, 1))
    await shop.fill(who, (cheap, 1))
    cart = (await shop.order.get("/api/cart", headers=who)).json()
    assert [(line["productId"], line["quantity"], line["lineTotal"]) for line in cart["items"]] == [
        (cheap, 3, 360_000),
        (dear, 1, 450_000.5),
    ]
    assert cart["items"][0]["imageUrl"] == "https://img.test/a.png" and cart["items"][0]["available"]
    # 810,000.50 is above the free-shipping threshold (500,000).
    assert (cart["subtotal"], cart["shippingFee"], cart["total"], cart["totalQuantity"]) == (
        810_000.5,
        0,
        810_000.5,
        4,
    )


async def test_quantities_change_lines_go_and_the_cart_empties(shop: Shop) -> None:
    who = buyer()
    first, second = await shop.new_product(price=10_000), await shop.new_product(price=20_000)
    await shop.fill(who, (first, 1), (second, 1))

    changed = await shop.order.put(f"/api/cart/items/{first}", json={"quantity": 5}, headers=who)
    assert changed.status_code == 200
    assert changed.json()["subtotal"] == 70_000 and changed.json()["shippingFee"] == 30_000
    removed = await shop.order.delete(f"/api/cart/items/{second}", headers=who)
    assert [line["productId"] for line in removed.json()["items"]] == [first]
    zero = await shop.order.put(f"/api/cart/items/{first}", json={"quantity": 0}, headers=who)
    assert zero.json()["items"] == [] and zero.json()["total"] == 0

    await shop.fill(who, (first, 1))
    assert (await shop.order.delete("/api/cart", headers=who)).status_code == 204
    assert (await shop.order.get("/api/cart", headers=who)).json()["items"] == []
    missing = await shop.order.put(f"/api/cart/items/{second}", json={"quantity": 2}, headers=who)
    assert missing.status_code == 404
    assert (await shop.order.delete("/api/cart/items/not-an-id", headers=who)).status_code == 404


async def test_only_products_for_sale_in_sane_quantities_go_in(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product()

    async def add(body: dict[str, object]) -> int:
        return (await shop.order.post("/api/cart/items", json=body, headers=who)).status_code

    assert await add({"productId": str(uuid.uuid4()), "quantity": 1}) == 422
    assert await add({"productId": product, "quantity": 0}) == 400
    assert await add({"productId": product, "quantity": 100}) == 400
    assert await add({"productId": product, "quantity": 1, "price": 1}) == 400
    assert await add({"productId": product, "variantId": str(uuid.uuid4())}) == 400
    assert await add({"productId": product, "variantId": str(uuid.UUID(int=0))}) == 400  # nothing added
    assert await add({"productId": "nope"}) == 400
    assert await add({"productId": product, "quantity": 99}) == 200
    assert await add({"productId": product, "quantity": 1}) == 422  # 100 of one line
    assert (await shop.order.get("/api/cart")).status_code == 401
    assert (
        await shop.order.put(f"/api/cart/items/{product}", json={"quantity": 100}, headers=who)
    ).status_code == 400


async def test_variants_are_lines_of_their_own_priced_as_the_variant(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product(
        price=100_000,
        variants=[
            {"sku": f"R{uuid.uuid4().hex[:6]}", "name": "Red", "price": 110_000},
            {"sku": f"B{uuid.uuid4().hex[:6]}", "name": "Blue", "price": 90_000},
        ],
    )
    red, blue = (v["id"] for v in (await shop.product.get(f"/api/products/{product}")).json()["variants"])
    for variant in (red, blue):
        added = await shop.order.post(
            "/api/cart/items", json={"productId": product, "variantId": variant}, headers=who
        )
        assert added.status_code == 200
    cart = added.json()
    assert [(line["variantName"], line["unitPrice"]) for line in cart["items"]] == [
        ("Red", 110_000),
        ("Blue", 90_000),
    ]

    ambiguous = await shop.order.put(f"/api/cart/items/{product}", json={"quantity": 2}, headers=who)
    assert ambiguous.status_code == 400
    empty = await shop.order.put(
        f"/api/cart/items/{product}", params={"variantId": ""}, json={"quantity": 2}, headers=who
    )
    assert empty.status_code == 400, "an empty variantId is no variant: still ambiguous"
    chosen = await shop.order.put(
        f"/api/cart/items/{product}", params={"variantId": blue}, json={"quantity": 2}, headers=who
    )
    assert [line["quantity"] for line in chosen.json()["items"]] == [1, 2]
    gone = await shop.order.delete(f"/api/cart/items/{product}", params={"variantId": red}, headers=who)
    assert [line["variantId"] for line in gone.json()["items"]] == [blue]


async def test_the_cart_is_kept_by_the_database_not_by_a_process(shop: Shop) -> None:
    who = buyer()
    product = await shop.new_product()
    await shop.fill(who, (product, 3))
    async with order_app(shop.deps) as restarted:
        cart = (await restarted.get("/api/cart", headers=who)).json()
    assert [(line["productId"], line["quantity"]) for line in cart["items"]] == [(product, 3)]
