"""Stock through the edge: public levels of the seeded demo catalog, and who may change them."""

from __future__ import annotations

import httpx
import pytest

from shop.map import demo_product_id
from svc_inventory.seed import demo_quantity
from tests.e2e.support import token

pytestmark = pytest.mark.e2e


async def test_anyone_sees_stock_and_only_its_seller_or_an_admin_sets_it(edge: httpx.AsyncClient) -> None:
    product = demo_product_id(7)
    public = await edge.get(f"/api/inventory/{product}")
    assert public.status_code == 200, public.text
    assert public.json()["onHand"] >= 0 and public.json()["productId"] == str(product)
    assert (await edge.get(f"/api/inventory/{demo_product_id(1)}")).json()["onHand"] >= demo_quantity(1) - 100
    seller = await token(edge, "seller@shop.local", "Seller123!")
    user = await token(edge, "user@shop.local", "User123!")
    admin = await token(edge, "admin@shop.local", "Admin123!")
    body = {"quantity": 321, "lowStockThreshold": 4}
    assert (await edge.put(f"/api/inventory/{product}", json=body, headers=user)).status_code == 403
    assert (await edge.put(f"/api/inventory/{product}", json=body)).status_code == 401
    changed = await edge.put(f"/api/inventory/{product}", json=body, headers=seller)
    assert changed.status_code == 200 and changed.json()["onHand"] == 321
    low = await edge.get("/api/inventory/low-stock", params={"fields": "productId,available"}, headers=admin)
    assert low.status_code == 200
    assert all(set(item) == {"productId", "available"} for item in low.json()["items"])
    unknown = await edge.get("/api/inventory/low-stock", params={"fields": "productId,cost"}, headers=admin)
    assert unknown.status_code == 400 and unknown.json()["details"][0]["field"] == "fields"
