"""The catalog through the edge: the seeded demo shop, a seller's product from creation to review."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shop.map import demo_product_id
from svc_product.demo import SELLER
from tests.e2e.support import demo_leaf
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def login(edge: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


async def as_seller(edge: httpx.AsyncClient) -> dict[str, str]:
    return await login(edge, "seller@shop.local", "Seller123!")


async def test_a_guest_browses_the_demo_catalog(edge: httpx.AsyncClient) -> None:
    tree = (await edge.get("/api/categories")).json()
    roots = [top for top in tree if top["children"] and top["children"][0]["children"]]
    assert len(roots) >= 3
    assert len((await edge.get("/api/brands")).json()) >= 50

    first = (await edge.get("/api/products", params={"pageSize": 100})).json()
    assert first["totalCount"] >= 9000 and len(first["items"]) == 100
    leaf = demo_leaf(roots)
    in_tree = (await edge.get("/api/products", params={"categoryId": roots[0]["id"], "pageSize": 1})).json()
    in_leaf = (await edge.get("/api/products", params={"categoryId": leaf["id"], "pageSize": 1})).json()
    assert in_tree["totalCount"] > in_leaf["totalCount"] > 0

    found = (await edge.get("/api/products", params={"search": "cafe lapt", "fields": "name"})).json()
    assert found["items"] and all("Café" in p["name"] and "Laptop" in p["name"] for p in found["items"])

    async def stocked() -> dict[str, Any] | None:
        detail = (await edge.get(f"/api/products/{demo_product_id(1)}")).json()
        return detail if detail["stock"] is not None else None

    detail = await eventually(stocked, within=15)
    assert detail is not None
    assert detail["stock"]["available"] >= 0 and len(detail["category"]["path"]) == 3 and detail["variants"]
    # Its variants' rows (gRPC, svc_product.stock) summed as svc_inventory's own page sums them.
    level = (await edge.get(f"/api/inventory/{demo_product_id(1)}")).json()
    assert detail["stock"] == {key: level[key] for key in ("available", "reserved", "onHand", "updatedAt")}
    bad = await edge.get("/api/products", params={"pageSize": 1000})
    assert bad.status_code == 400 and bad.json()["error"] == "ValidationError"


async def test_a_sellers_product_goes_live_takes_stock_and_gets_reviewed(edge: httpx.AsyncClient) -> None:
    seller = await as_seller(edge)
    shopper = await login(edge, "user@shop.local", "User123!")
    category = demo_leaf((await edge.get("/api/categories")).json())
    name = f"E2E Lamp {uuid.uuid4().hex[:8]}"
    body = {
        "name": name,
        "price": 150000,
        "categoryId": category["id"],
        "variants": [{"sku": name[-8:], "price": 1}],
    }
    assert (await edge.post("/api/products", json=body, headers=shopper)).status_code == 403
    assert (await edge.post("/api/products", json=body)).status_code == 401
    created = await edge.post("/api/products", json=body, headers=seller)
    assert created.status_code == 201, created.text
    product = created.json()
    path = f"/api/products/{product['id']}"
    assert (await edge.get(path)).json()["name"] == name

    changed = await edge.patch(path, json={"price": 120000}, headers=seller)
    assert changed.status_code == 200 and changed.json()["price"] == 120000
    assert (await edge.get(path)).json()["price"] == 120000
    listed = (await edge.get("/api/products", params={"search": name, "fields": "id,price"})).json()
    assert listed["items"] == [{"id": product["id"], "price": 120000}]

    # svc_inventory learns the product and its seller from product.created; the seller then stocks it.
    async def stock_set() -> bool:
        response = await edge.put(
            f"/api/inventory/{product['id']}", json={"quantity": 12, "lowStockThreshold": 2}, headers=seller
        )
        return response.status_code == 200

    await eventually(stock_set, within=15)

    async def shows_stock() -> bool:
        stock = (await edge.get(path)).json()["stock"]
        return stock is not None and stock["available"] == 12

    await eventually(shows_stock, within=20)

    reviewed = await edge.post(f"{path}/reviews", json={"rating": 4, "comment": "Bright"}, headers=shopper)
    assert reviewed.status_code == 201 and reviewed.json()["authorName"] == "Demo User"
    assert (await edge.post(f"{path}/reviews", json={"rating": 5}, headers=shopper)).status_code == 409
    detail = (await edge.get(path)).json()
    assert detail["rating"] == 4 and detail["reviewCount"] == 1
    reviews = (await edge.get(f"{path}/reviews")).json()
    assert [r["comment"] for r in reviews["items"]] == ["Bright"]

    assert (await edge.delete(path, headers=shopper)).status_code == 403
    assert (await edge.delete(path, headers=seller)).status_code == 204
    assert (await edge.get(path)).status_code == 404


async def test_admins_manage_the_catalog_and_its_cache(edge: httpx.AsyncClient) -> None:
    admin = await login(edge, "admin@shop.local", "Admin123!")
    seller = await as_seller(edge)
    slug = f"e2e-{uuid.uuid4().hex[:8]}"
    assert (
        await edge.post("/api/categories", json={"name": "E2E", "slug": slug}, headers=seller)
    ).status_code == 403
    created = await edge.post("/api/categories", json={"name": "E2E", "slug": slug}, headers=admin)
    assert created.status_code == 201
    assert any(c["slug"] == slug for c in (await edge.get("/api/categories")).json())

    await edge.get(f"/api/products/{demo_product_id(2)}")
    await edge.get(f"/api/products/{demo_product_id(2)}")
    stats = await edge.get("/api/admin/cache/stats", headers=admin)
    assert stats.status_code == 200 and stats.json()["hits"] >= 1
    assert (await edge.get("/api/admin/cache/stats", headers=seller)).status_code == 403
    purged = await edge.delete("/api/admin/cache", params={"prefix": "category:"}, headers=admin)
    assert purged.status_code == 200 and purged.json()["deleted"] >= 1
    assert (await edge.get("/api/categories")).status_code == 200


async def test_identity_headers_from_a_client_grant_nothing(edge: httpx.AsyncClient) -> None:
    spoofed = {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "Admin,Seller"}
    assert (await edge.post("/api/products", json={"name": "x"}, headers=spoofed)).status_code == 401
    assert (await edge.get("/api/admin/cache/stats", headers=spoofed)).status_code == 401
    drafts = await edge.get("/api/products", params={"status": "draft"}, headers=spoofed)
    assert drafts.status_code == 403


async def test_a_shopper_searches_the_demo_catalog_with_typos_facets_and_suggestions(
    edge: httpx.AsyncClient,
) -> None:
    typed = (await edge.get("/api/products", params={"search": "smrtphone", "fields": "name"})).json()
    assert typed["totalCount"] > 0 and typed["didYouMean"] == "smartphone"
    assert all("Smartphone" in p["name"] for p in typed["items"])

    # The demo catalog's products only: other suites in the same namespace leave smartphones of their own.
    facets_asked = "category,brand,price,rating,attributes"
    params = {"search": "smartphone", "facets": facets_asked, "sellerId": str(SELLER)}
    faceted = (await edge.get("/api/products", params=params)).json()
    facets = faceted["facets"]
    smartphones = next(c for c in facets["category"] if c["name"] == "Smartphones")
    electronics = next(c for c in facets["category"] if c["name"] == "Electronics")
    assert smartphones["count"] == faceted["totalCount"] <= electronics["count"]
    assert sum(b["count"] for b in facets["brand"]) == faceted["totalCount"]
    assert sum(band["count"] for band in facets["price"]) == faceted["totalCount"]
    assert {a["name"] for a in facets["attributes"]} == {"colour", "storage"}

    suggested = await edge.get("/api/products/suggest", params={"q": "smartph"})
    assert suggested.status_code == 200
    kinds = [(s["kind"], s["name"]) for s in suggested.json()["suggestions"]]
    assert kinds[0] == ("category", "Smartphones") and len(kinds) == 10
    assert all(kind == "product" and "Smartphone" in name for kind, name in kinds[1:])


async def test_a_product_going_out_of_stock_and_back_moves_between_the_stock_facet_counts(
    edge: httpx.AsyncClient,
) -> None:
    seller = await as_seller(edge)
    name = f"Storm Lantern {uuid.uuid4().hex[:10]}"
    category = demo_leaf((await edge.get("/api/categories")).json())
    body = {"name": name, "price": 150000, "categoryId": category["id"]}
    created = await edge.post("/api/products", json=body, headers=seller)
    assert created.status_code == 201, created.text
    stock_path = f"/api/inventory/{created.json()['id']}"

    async def counted(in_stock: int, out_of_stock: int) -> bool:
        params = {"search": name, "facets": "stock", "inStock": "true"}
        found = (await edge.get("/api/products", params=params)).json()
        counts = [band["count"] for band in found["facets"]["stock"]]
        return counts == [in_stock, out_of_stock] and found["totalCount"] == in_stock

    assert await counted(0, 1)  # nothing on hand until its seller stocks it

    # svc_inventory learns the product from product.created; from then on its seller may stock it.
    async def stocked(quantity: int) -> bool:
        response = await edge.put(stock_path, json={"quantity": quantity}, headers=seller)
        return response.status_code == 200

    await eventually(lambda: stocked(5), within=15)
    await eventually(lambda: counted(1, 0), within=15)
    assert await stocked(0)
    await eventually(lambda: counted(0, 1), within=15)
    assert await stocked(3)
    await eventually(lambda: counted(1, 0), within=15)
