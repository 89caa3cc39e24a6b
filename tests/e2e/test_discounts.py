"""Discounts through the edge: an Admin creates a coupon, anyone validates it."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.support import token

pytestmark = pytest.mark.e2e


async def test_an_admin_creates_a_coupon_that_anyone_can_validate(edge: httpx.AsyncClient) -> None:
    admin = await token(edge, "admin@shop.local", "Admin123!")
    user = await token(edge, "user@shop.local", "User123!")
    code = f"E2E{uuid.uuid4().hex[:8]}".upper()
    body = {"code": code, "name": "E2E", "kind": "PERCENTAGE", "value": 10, "maxDiscount": 50000}
    assert (await edge.post("/api/discounts", json=body, headers=user)).status_code == 403
    created = await edge.post("/api/discounts", json=body, headers=admin)
    assert created.status_code == 201, created.text
    listed = await edge.get("/api/discounts", params={"search": code, "fields": "code,value"}, headers=admin)
    assert listed.status_code == 200 and listed.json()["items"] == [{"code": code, "value": 10}]
    # LIKE's wildcards in a search are plain characters.
    assert (await edge.get("/api/discounts", params={"search": "E2E%"}, headers=admin)).json()["items"] == []
    checked = await edge.get(f"/api/discounts/{code.lower()}/validate", params={"subtotal": "1000000"})
    assert checked.status_code == 200
    assert checked.json() == {"valid": True, "discountAmount": 50000.0, "reason": "", "code": code}
