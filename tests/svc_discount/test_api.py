"""The Admin REST API for discounts and campaigns, and public validation."""

from __future__ import annotations

import uuid

import pytest

from tests.support import identity
from tests.svc_discount.conftest import ADMIN, Stack, coupon, new_code

USER = identity("User")


async def test_an_admin_creates_reads_changes_and_deactivates_a_discount(discounts: Stack) -> None:
    made = await coupon(discounts, value=12.5, maxDiscount=99999.99)
    assert made["value"] == 12.5 and made["maxDiscount"] == 99999.99 and made["active"] is True
    path = f"/api/discounts/{made['id']}"
    assert (await discounts.http.get(path, headers=ADMIN)).json()["code"] == made["code"]
    patched = await discounts.http.patch(path, json={"value": 20, "usageLimit": 3}, headers=ADMIN)
    assert patched.status_code == 200
    assert (patched.json()["value"], patched.json()["usageLimit"], patched.json()["name"]) == (
        20,
        3,
        "Test coupon",
    )
    replaced = await discounts.http.put(
        path,
        json={"code": made["code"], "name": "Other", "kind": "FIXED_AMOUNT", "value": 1000},
        headers=ADMIN,
    )
    assert replaced.status_code == 200 and replaced.json()["usageLimit"] is None
    assert (await discounts.http.delete(path, headers=ADMIN)).status_code == 204
    assert (await discounts.http.get(path, headers=ADMIN)).json()["active"] is False
    assert (await discounts.http.get(f"/api/discounts/{uuid.uuid4()}", headers=ADMIN)).status_code == 404


async def test_codes_are_unique_whatever_their_case(discounts: Stack) -> None:
    made = await coupon(discounts)
    again = await discounts.http.post(
        "/api/discounts",
        json={"code": str(made["code"]).lower(), "name": "Dup", "kind": "PERCENTAGE", "value": 5},
        headers=ADMIN,
    )
    assert again.status_code == 409 and again.json()["error"] == "Conflict"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"value": 101}, "value"),
        ({"value": 10.001}, "value"),
        ({"value": -1}, "value"),
        ({"code": "no spaces"}, "code"),
        ({"scope": "PRODUCTS"}, "productIds"),
        ({"startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z"}, "endsAt"),
        ({"kind": "BOGO"}, "kind"),
        ({"campaignId": str(uuid.uuid4())}, "campaignId"),
    ],
)
async def test_bad_discounts_are_400_and_write_nothing(
    discounts: Stack, fields: dict[str, object], field: str
) -> None:
    code = new_code()
    body = {"code": code, "name": "Bad", "kind": "PERCENTAGE", "value": 10, **fields}
    response = await discounts.http.post("/api/discounts", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == field
    assert await discounts.db.fetchval("SELECT count(*) FROM discounts WHERE code = $1", code) == 0


async def test_only_admins_manage_discounts_and_campaigns(discounts: Stack) -> None:
    for method, path in (("GET", "/api/discounts"), ("POST", "/api/discounts"), ("GET", "/api/campaigns")):
        assert (await discounts.http.request(method, path, headers=USER)).status_code == 403
        assert (await discounts.http.request(method, path)).status_code == 401


async def test_admins_list_discounts_by_page_with_search(discounts: Stack) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    for _ in range(3):
        await coupon(discounts, code=f"L{tag}{uuid.uuid4().hex[:4]}")
    page = await discounts.http.get(
        "/api/discounts",
        params={"search": tag, "pageSize": 2, "sortBy": "code", "sortOrder": "asc"},
        headers=ADMIN,
    )
    body = page.json()
    assert (body["totalCount"], body["totalPages"], len(body["items"])) == (3, 2, 2)
    assert body["items"][0]["code"] < body["items"][1]["code"]
    bad = await discounts.http.get("/api/discounts", params={"sortBy": "value"}, headers=ADMIN)
    assert bad.status_code == 400
    # A backslash in the search is a character like any other, not LIKE's escape.
    await coupon(discounts, name=f"Back\\slash {tag}")
    found = await discounts.http.get("/api/discounts", params={"search": f"k\\slash {tag}"}, headers=ADMIN)
    assert [item["name"] for item in found.json()["items"]] == [f"Back\\slash {tag}"]


async def test_anyone_validates_a_code_against_a_subtotal(discounts: Stack) -> None:
    made = await coupon(discounts, value=15)
    response = await discounts.http.get(
        f"/api/discounts/{str(made['code']).lower()}/validate?subtotal=200000"
    )
    assert response.status_code == 200
    assert response.json() == {"valid": True, "discountAmount": 30000.0, "reason": "", "code": made["code"]}
    unknown = await discounts.http.get("/api/discounts/NOPE-NOPE/validate?subtotal=1")
    assert unknown.json()["valid"] is False and unknown.json()["reason"] == "not_found"
    for query in ("", "?subtotal=abc", "?subtotal=-1", "?subtotal=1.234"):
        bad = await discounts.http.get(f"/api/discounts/{made['code']}/validate{query}")
        assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "subtotal"


async def test_usage_history_per_discount_and_per_user(discounts: Stack) -> None:
    from protos import discount_pb2 as pb

    made = await coupon(discounts)
    user = uuid.uuid4()
    order = uuid.uuid4()
    applied = await discounts.stub.ApplyDiscount(
        pb.ApplyDiscountRequest(
            order_id=str(order), code=str(made["code"]), user_id=str(user), subtotal="100000"
        )
    )
    assert applied.applied
    history = await discounts.http.get(f"/api/discounts/{made['id']}/usages", headers=ADMIN)
    (usage,) = history.json()["items"]
    assert (usage["orderId"], usage["amount"], usage["state"]) == (str(order), 10000.0, "RESERVED")
    mine = await discounts.http.get("/api/discounts/usages/me", headers={**USER, "X-User-Id": str(user)})
    assert [u["orderId"] for u in mine.json()["items"]] == [str(order)]
