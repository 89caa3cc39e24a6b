"""Addresses: one default, at most twenty, each user sees and touches only their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support import identity
from tests.svc_user.conftest import NewUser
from tests.svc_user.support import User, UserService, announced

HOME = {
    "fullName": "Nguyễn Văn An",
    "phone": "+84 912 345 678",
    "line1": "12 Lý Thái Tổ",
    "city": "Hà Nội",
    "district": "Hoàn Kiếm",
    "country": "vn",
}
OFFICE = {
    "fullName": "An Nguyen",
    "phone": "+84987654321",
    "line1": "1 Le Duan",
    "city": "HCMC",
    "country": "VN",
}


async def add(svc: UserService, user: User, body: Mapping[str, object]) -> dict[str, Any]:
    response = await svc.http.post("/api/users/me/addresses", headers=user.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed(svc: UserService, user: User) -> list[dict[str, Any]]:
    response = await svc.http.get("/api/users/me/addresses", headers=user.headers)
    assert response.status_code == 200
    return response.json()["items"]  # type: ignore[no-any-return]


async def test_the_first_address_is_the_default_and_is_stored_normalised(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    home = await add(svc, user, HOME)
    assert home["isDefault"] is True
    assert (home["phone"], home["country"], home["line2"], home["postalCode"]) == (
        "+84912345678",
        "VN",
        None,
        None,
    )
    office = await add(svc, user, OFFICE)
    assert office["isDefault"] is False
    page = (await svc.http.get("/api/users/me/addresses", headers=user.headers)).json()
    assert [a["id"] for a in page["items"]] == [home["id"], office["id"]]
    assert (page["totalCount"], page["page"], page["pageSize"], page["totalPages"]) == (2, 1, 20, 1)
    assert await announced(svc.deps.db, user.id) == [["addresses"], ["addresses"]]


async def test_making_another_address_the_default_moves_the_flag(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    home = await add(svc, user, HOME)
    office = await add(svc, user, {**OFFICE, "isDefault": True})
    assert office["isDefault"] is True
    assert [(a["id"], a["isDefault"]) for a in await listed(svc, user)] == [
        (office["id"], True),
        (home["id"], False),
    ]
    moved = await svc.http.put(
        f"/api/users/me/addresses/{home['id']}", headers=user.headers, json={**HOME, "isDefault": True}
    )
    assert moved.status_code == 200 and moved.json()["isDefault"] is True
    assert [a["isDefault"] for a in await listed(svc, user)] == [True, False]


async def test_the_default_cannot_be_unset_only_moved(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    home = await add(svc, user, HOME)
    response = await svc.http.put(
        f"/api/users/me/addresses/{home['id']}", headers=user.headers, json={**HOME, "isDefault": False}
    )
    assert response.status_code == 422 and response.json()["error"] == "BusinessRuleViolation"
    assert (await listed(svc, user))[0]["isDefault"] is True


async def test_updating_replaces_the_fields_and_keeps_the_flag(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    home = await add(svc, user, {**HOME, "line2": "Tầng 3", "postalCode": "100000"})
    response = await svc.http.put(f"/api/users/me/addresses/{home['id']}", headers=user.headers, json=OFFICE)
    assert response.status_code == 200
    updated = response.json()
    assert updated["line1"] == "1 Le Duan" and updated["line2"] is None and updated["district"] is None
    assert updated["isDefault"] is True and updated["createdAt"] == home["createdAt"]
    assert updated["updatedAt"] > home["updatedAt"]
    same = await svc.http.put(f"/api/users/me/addresses/{home['id']}", headers=user.headers, json=OFFICE)
    assert same.json() == updated
    assert await announced(svc.deps.db, user.id) == [["addresses"], ["addresses"]]


async def test_deleting_the_default_promotes_the_newest_other_address(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    home = await add(svc, user, HOME)
    office = await add(svc, user, OFFICE)
    third = await add(svc, user, {**OFFICE, "line1": "3 Third Street"})
    assert (
        await svc.http.delete(f"/api/users/me/addresses/{home['id']}", headers=user.headers)
    ).status_code == 204
    assert [(a["id"], a["isDefault"]) for a in await listed(svc, user)] == [
        (third["id"], True),
        (office["id"], False),
    ]
    again = await svc.http.delete(f"/api/users/me/addresses/{home['id']}", headers=user.headers)
    assert again.status_code == 404


async def test_a_user_never_sees_or_touches_another_users_address(
    svc: UserService, new_user: NewUser
) -> None:
    owner, other = await new_user(), await new_user()
    home = await add(svc, owner, HOME)
    path = f"/api/users/me/addresses/{home['id']}"
    assert await listed(svc, other) == []
    put = await svc.http.put(path, headers=other.headers, json=OFFICE)
    assert put.status_code == 404 and put.json()["error"] == "NotFound"
    assert (await svc.http.delete(path, headers=other.headers)).status_code == 404
    assert await listed(svc, owner) == [home]
    assert await announced(svc.deps.db, other.id) == []


async def test_unknown_or_malformed_address_ids_are_404(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    for address_id in (uuid.uuid4(), "not-a-uuid"):
        path = f"/api/users/me/addresses/{address_id}"
        assert (await svc.http.put(path, headers=user.headers, json=HOME)).status_code == 404
        assert (await svc.http.delete(path, headers=user.headers)).status_code == 404


async def test_concurrent_additions_keep_at_most_twenty_addresses_and_one_default(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    responses = await asyncio.gather(
        *(
            svc.http.post(
                "/api/users/me/addresses", headers=user.headers, json={**OFFICE, "line1": f"{n} Street"}
            )
            for n in range(24)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] * 20 + [422] * 4
    assert "20" in next(r for r in responses if r.status_code == 422).json()["message"]
    page = (
        await svc.http.get(
            "/api/users/me/addresses", headers=user.headers, params={"page": 2, "pageSize": 15}
        )
    ).json()
    assert (len(page["items"]), page["totalCount"], page["totalPages"]) == (5, 20, 2)
    defaults = await svc.deps.db.fetchval(
        "SELECT count(*) FROM addresses WHERE user_id = $1 AND is_default", user.id
    )
    assert defaults == 1


async def test_an_address_phone_in_national_form_is_read_in_the_address_country(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    hanoi = await add(svc, user, {**HOME, "phone": "0912 345 678"})
    tokyo = await add(svc, user, {**OFFICE, "phone": "090-1234-5678", "country": "jp"})
    assert (hanoi["phone"], tokyo["phone"]) == ("+84912345678", "+819012345678")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "VNM"}, "country"),
        ({"phone": "12"}, "phone"),
        ({"phone": "0912345678", "country": "JP"}, "phone"),
        ({"line1": "  "}, "line1"),
        ({"city": ""}, "city"),
        ({"postalCode": "<script>"}, "postalCode"),
        ({"line1": None}, "line1"),
        ({"isDefault": "yes"}, "isDefault"),
        ({"userId": str(uuid.uuid4())}, "userId"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_invalid_addresses_are_400_naming_the_field_and_write_nothing(
    svc: UserService, new_user: NewUser, change: dict[str, object], field: str
) -> None:
    user = await new_user()
    response = await svc.http.post("/api/users/me/addresses", headers=user.headers, json={**HOME, **change})
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
    assert await listed(svc, user) == []


async def test_a_missing_field_is_400(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    body = {k: v for k, v in HOME.items() if k != "city"}
    response = await svc.http.post("/api/users/me/addresses", headers=user.headers, json=body)
    assert response.status_code == 400 and "city" in response.json()["message"]


async def test_addresses_need_a_profile_and_a_caller(svc: UserService) -> None:
    stranger = identity(email="stranger@shop.test")
    assert (await svc.http.post("/api/users/me/addresses", headers=stranger, json=HOME)).status_code == 404
    assert (await svc.http.get("/api/users/me/addresses")).status_code == 401
