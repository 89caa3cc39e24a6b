from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import identity
from tests.svc_product.conftest import (
    admin,
    events_of,
    new_brand,
    new_category,
    new_product,
    seller,
    user,
    word,
)

FULL: dict[str, Any] = {
    "description": "Thin and light.",
    "variants": [
        {"sku": "{w}-S", "price": 250000, "attributes": {"size": "S", "colour": "Red"}},
        {"sku": "{w}-M", "price": 260000.5, "name": "Medium red"},
    ],
    "attributes": [{"name": "Material", "value": "Cotton"}, {"name": "Origin", "value": "Việt Nam"}],
    "images": [{"url": "https://img.test/1.jpg", "altText": "front"}, {"url": "https://img.test/2.jpg"}],
}


def full_body(category_id: str, **extra: Any) -> dict[str, Any]:
    w = word()
    variants = [{**v, "sku": v["sku"].replace("{w}", w)} for v in FULL["variants"]]
    return {
        "name": f"Shirt {w}",
        "price": 250000,
        "categoryId": category_id,
        **FULL,
        "variants": variants,
        **extra,
    }


async def test_a_seller_creates_a_product_that_anyone_reads_whole(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    top = await new_category(client)
    leaf = await new_category(client, top["id"])
    brand = await new_brand(client)
    owner = seller()
    created = await client.post(
        "/api/products", json=full_body(leaf["id"], brandId=brand["id"]), headers=owner
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["sellerId"] == owner["X-User-Id"] and product["status"] == "active"
    assert product["slug"].startswith("shirt-zq") and product["rating"] == 0 and product["reviewCount"] == 0
    assert [c["id"] for c in product["category"]["path"]] == [top["id"], leaf["id"]]
    assert product["brand"] == {"id": brand["id"], "name": brand["name"], "slug": brand["slug"]}
    assert [v["price"] for v in product["variants"]] == [250000, 260000.5]
    assert product["variants"][0]["attributes"] == {"size": "S", "colour": "Red"}
    assert product["variants"][1]["name"] == "Medium red" and product["variants"][0]["name"].endswith("-S")
    assert [a["value"] for a in product["attributes"]] == ["Cotton", "Việt Nam"]
    assert [i["url"] for i in product["images"]] == ["https://img.test/1.jpg", "https://img.test/2.jpg"]
    assert product["stock"] is None  # svc_inventory is not running in these tests

    read = await client.get(f"/api/products/{product['id']}")
    assert read.status_code == 200 and read.json() == product
    assert read.headers["content-type"] == "application/json" and read.headers["x-request-id"]

    (event,) = await events_of(db, "product.created", product["id"])
    assert event["sellerId"] == owner["X-User-Id"] and event["price"] == 250000
    assert event["categoryId"] == leaf["id"] and event["image"] == "https://img.test/1.jpg"
    assert event["eventId"] and event["occurredAt"]
    # What svc_order prices a cart with (its projection keeps the newest version).
    assert event["version"] == product["version"] == 1
    assert [(v["id"], v["name"], v["price"]) for v in event["variants"]] == [
        (v["id"], v["name"], v["price"]) for v in product["variants"]
    ]


@pytest.mark.parametrize("field", ["sellerId", "rating", "reviewCount", "createdAt", "updatedAt", "id"])
async def test_fields_the_server_owns_cannot_be_set_by_the_client(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any], field: str
) -> None:
    name = f"Sneaky {word()}"
    body = {"name": name, "price": 1, "categoryId": category["id"], field: str(uuid.uuid4())}
    response = await client.post("/api/products", json=body, headers=seller())
    assert response.status_code == 400 and response.json()["error"] == "ValidationError"
    assert await db.fetchval("SELECT count(*) FROM products WHERE name = $1", name) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"price": -1}, "price"),
        ({"price": 10.555}, "price"),
        ({"price": "cheap"}, "price"),
        ({"categoryId": "not-a-uuid"}, "categoryId"),
        ({"categoryId": str(uuid.uuid4())}, "categoryId"),
        ({"brandId": str(uuid.uuid4())}, "brandId"),
        ({"status": "sold"}, "status"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"images": [{"url": "javascript:alert(1)"}]}, "images[0]"),
        ({"images": [{"url": f"https://img.test/{n}.jpg"} for n in range(21)]}, "images"),
        ({"variants": [{"sku": "A-1", "price": 1}, {"sku": "a-1", "price": 2}]}, "variants"),
        ({"variants": [{"sku": "bad sku", "price": 1}]}, "variants[0].sku"),
        ({"attributes": [{"name": "Size", "value": "M"}, {"name": "size", "value": "L"}]}, "attributes"),
    ],
)
async def test_bad_products_are_a_400_naming_the_field_and_write_nothing(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    category: dict[str, Any],
    change: dict[str, Any],
    field: str,
) -> None:
    name = f"Bad {word()}"
    body = {"name": name, "price": 1000, "categoryId": category["id"], **change}
    response = await client.post("/api/products", json=body, headers=seller())
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "ValidationError" and error["details"][0]["field"] == field
    assert (
        await db.fetchval("SELECT count(*) FROM products WHERE category_id = $1", uuid.UUID(category["id"]))
        == 0
    )


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        "/api/products", content=b'{"name": ', headers={**seller(), "content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["details"][0]["field"] == "body"
    form = await client.post(
        "/api/products",
        content=b"name=x",
        headers={**seller(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (user(), 403), (identity("User", "Seller"), 201), (admin(), 201)],
    ids=["guest", "user", "seller", "admin"],
)
async def test_only_sellers_and_admins_create_products(
    client: httpx.AsyncClient, category: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    body = {"name": f"Lamp {word()}", "price": 5, "categoryId": category["id"]}
    response = await client.post("/api/products", json=body, headers=headers)
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("who", "status"),
    [("guest", 401), ("user", 403), ("other seller", 403), ("owner", 200), ("admin", 200)],
)
async def test_a_product_is_changed_only_by_its_seller_or_an_admin(
    client: httpx.AsyncClient, category: dict[str, Any], who: str, status: int
) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner)
    headers = {"guest": {}, "user": user(), "other seller": seller(), "owner": owner, "admin": admin()}[who]
    for method in ("PUT", "PATCH"):
        body = {"name": "Renamed", "price": 7, "categoryId": category["id"]}
        response = await client.request(method, f"/api/products/{product['id']}", json=body, headers=headers)
        assert response.status_code == status, response.text
    deleted = await client.delete(f"/api/products/{product['id']}", headers=headers)
    assert deleted.status_code == (204 if status == 200 else status)


async def test_put_replaces_the_product_and_keeps_variant_ids_of_kept_skus(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any]
) -> None:
    owner = seller()
    created = (await client.post("/api/products", json=full_body(category["id"]), headers=owner)).json()
    kept = created["variants"][0]
    body = {
        "name": "Replaced",
        "price": 99.99,
        "categoryId": category["id"],
        "variants": [{"sku": kept["sku"], "price": 120}],
    }
    replaced = await client.put(f"/api/products/{created['id']}", json=body, headers=owner)
    assert replaced.status_code == 200, replaced.text
    product = replaced.json()
    assert product["name"] == "Replaced" and product["price"] == 99.99 and product["slug"] == created["slug"]
    assert [(v["id"], v["price"]) for v in product["variants"]] == [(kept["id"], 120)]
    assert product["attributes"] == [] and product["images"] == [] and product["description"] == ""
    assert product["sellerId"] == owner["X-User-Id"] and product["createdAt"] == created["createdAt"]
    assert product["updatedAt"] > created["updatedAt"]
    (event,) = await events_of(db, "product.updated", created["id"])
    assert event["name"] == "Replaced" and event["sellerId"] == owner["X-User-Id"] and event["image"] is None
    assert event["version"] == product["version"] == 2
    assert [(v["id"], v["price"]) for v in event["variants"]] == [(kept["id"], 120)]


async def test_patch_changes_only_what_it_names(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    owner = seller()
    brand = await new_brand(client)
    created = (
        await client.post("/api/products", json=full_body(category["id"], brandId=brand["id"]), headers=owner)
    ).json()
    patched = await client.patch(
        f"/api/products/{created['id']}", json={"price": 1.5, "brandId": None, "images": []}, headers=owner
    )
    assert patched.status_code == 200, patched.text
    product = patched.json()
    assert product["price"] == 1.5 and product["brand"] is None and product["images"] == []
    assert product["name"] == created["name"] and product["variants"] == created["variants"]
    assert product["attributes"] == created["attributes"]


async def test_an_admin_edit_keeps_the_seller(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner)
    edited = await client.patch(f"/api/products/{product['id']}", json={"name": "By admin"}, headers=admin())
    assert edited.status_code == 200 and edited.json()["sellerId"] == owner["X-User-Id"]


async def test_a_deleted_product_disappears_but_its_row_and_reviews_stay(
    client: httpx.AsyncClient, db: asyncpg.Connection, category: dict[str, Any]
) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner)
    assert (
        await client.post(f"/api/products/{product['id']}/reviews", json={"rating": 4}, headers=user())
    ).status_code == 201

    assert (await client.get(f"/api/products/{product['id']}/reviews")).json()["totalCount"] == 1
    assert (await client.delete(f"/api/products/{product['id']}", headers=owner)).status_code == 204
    assert (await client.get(f"/api/products/{product['id']}")).status_code == 404
    assert (await client.get(f"/api/products/{product['id']}/reviews")).status_code == 404
    assert (await client.get(f"/api/products/{product['id']}", headers=owner)).status_code == 404
    listed = (await client.get("/api/products", params={"categoryId": category["id"]})).json()
    assert listed["items"] == [] and listed["totalCount"] == 0
    assert (await client.delete(f"/api/products/{product['id']}", headers=owner)).status_code == 404
    assert (
        await client.patch(f"/api/products/{product['id']}", json={"price": 2}, headers=owner)
    ).status_code == 404

    row = await db.fetchrow("SELECT name, deleted_at FROM products WHERE id = $1", uuid.UUID(product["id"]))
    assert row["name"] == product["name"] and row["deleted_at"] is not None
    assert (
        await db.fetchval("SELECT count(*) FROM reviews WHERE product_id = $1", uuid.UUID(product["id"])) == 1
    )
    (event,) = await events_of(db, "product.deleted", product["id"])
    assert event["sellerId"] == owner["X-User-Id"] and event["version"] == product["version"] + 1


async def test_drafts_are_seen_only_by_their_seller_and_admins(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    owner, other = seller(), seller()
    draft = await new_product(client, category["id"], owner, status="draft")
    assert draft["status"] == "draft"
    await new_product(client, category["id"], other, status="draft")
    live = await new_product(client, category["id"], owner)

    for headers in ({}, user(), other):
        assert (await client.get(f"/api/products/{draft['id']}", headers=headers)).status_code == 404
    assert (await client.get(f"/api/products/{draft['id']}", headers=owner)).json()["id"] == draft["id"]
    assert (await client.get(f"/api/products/{draft['id']}", headers=admin())).status_code == 200

    public = (await client.get("/api/products", params={"categoryId": category["id"]})).json()
    assert [p["id"] for p in public["items"]] == [live["id"]]
    mine = await client.get(
        "/api/products", params={"categoryId": category["id"], "status": "draft"}, headers=owner
    )
    assert [p["id"] for p in mine.json()["items"]] == [draft["id"]]
    everything = await client.get(
        "/api/products", params={"categoryId": category["id"], "status": "all"}, headers=admin()
    )
    assert everything.json()["totalCount"] == 3
    for headers in ({}, user()):
        refused = await client.get("/api/products", params={"status": "draft"}, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"


async def test_the_batch_read_returns_active_products_in_the_order_asked(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    owner = seller()
    first = await new_product(client, category["id"], owner, price=10)
    second = await new_product(client, category["id"], owner, price=20)
    draft = await new_product(client, category["id"], owner, status="draft")
    gone = await new_product(client, category["id"], owner)
    await client.delete(f"/api/products/{gone['id']}", headers=owner)
    ids = [second["id"], str(uuid.uuid4()), first["id"], draft["id"], gone["id"], second["id"]]
    response = await client.get("/api/products", params={"ids": ",".join(ids)})
    assert response.status_code == 200, response.text
    batch = response.json()
    assert [p["id"] for p in batch["items"]] == [second["id"], first["id"]]
    assert (
        batch["items"][0]["price"] == 20
        and "variants" in batch["items"][0]
        and "stock" not in batch["items"][0]
    )
    assert batch["totalCount"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ids": ",".join(str(uuid.uuid4()) for _ in range(101))}, "ids"),
        ({"ids": "nope"}, "ids"),
        ({"ids": ","}, "ids"),
        ({"ids": str(uuid.uuid4()), "search": "lamp"}, "search"),
    ],
)
async def test_bad_batch_reads_are_400(client: httpx.AsyncClient, params: dict[str, str], field: str) -> None:
    response = await client.get("/api/products", params=params)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field


async def test_slugs_and_skus_are_unique(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    slug, sku = word(), f"SKU-{word()}"
    await new_product(client, category["id"], slug=slug, variants=[{"sku": sku, "price": 1}])
    same_slug = await client.post(
        "/api/products",
        json={"name": "A", "price": 1, "categoryId": category["id"], "slug": slug},
        headers=seller(),
    )
    assert same_slug.status_code == 409 and same_slug.json()["details"][0]["field"] == "slug"
    same_sku = await client.post(
        "/api/products",
        json={"name": "B", "price": 1, "categoryId": category["id"], "variants": [{"sku": sku, "price": 1}]},
        headers=seller(),
    )
    assert same_sku.status_code == 409 and same_sku.json()["details"][0]["field"] == "variants"


@pytest.mark.parametrize("path", ["/api/products/42", "/api/products/42/reviews"])
async def test_a_malformed_product_id_names_no_product_so_is_a_404(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404 and response.json()["message"] == "Product not found"


async def test_an_unknown_product_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/products/{uuid.uuid4()}")
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
