"""Admin: search users by name, email or phone, page through them, read any profile; nobody else may."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.svc_user.conftest import NewUser
from tests.svc_user.support import User, UserService, admin


async def search(svc: UserService, **params: str | int) -> dict[str, Any]:
    response = await svc.http.get("/api/users", headers=admin(), params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def trio(svc: UserService, new_user: NewUser) -> tuple[str, list[User]]:
    """Three users sharing a random marker in their names; the second has a phone number."""
    marker = uuid.uuid4().hex[:10]
    users = [
        await new_user(f"Đức {marker} Phạm", email=f"c{marker}@shop.test"),
        await new_user(f"Anh {marker} Lê", email=f"a{marker}@example.org"),
        await new_user(f"Bình {marker} Trần", email=f"b{marker}@shop.test"),
    ]
    phone = "+8491" + str(uuid.uuid4().int)[:7]
    await svc.http.patch("/api/users/me", headers=users[1].headers, json={"phone": phone})
    return marker, users


async def test_search_matches_name_email_and_phone_and_ignores_case_and_accents(
    svc: UserService, trio: tuple[str, list[User]]
) -> None:
    marker, (duc, anh, binh) = trio
    by_name = await search(svc, search=marker.upper())
    assert {item["id"] for item in by_name["items"]} == {str(duc.id), str(anh.id), str(binh.id)}
    assert (await search(svc, search=f"duc {marker}"))["items"][0]["id"] == str(duc.id)
    assert [i["id"] for i in (await search(svc, search=f"a{marker}@example"))["items"]] == [str(anh.id)]
    profile = (await svc.http.get("/api/users/me", headers=anh.headers)).json()
    assert [i["id"] for i in (await search(svc, search=profile["phone"][1:]))["items"]] == [str(anh.id)]


async def test_search_pages_and_sorts_as_the_contract_says(
    svc: UserService, trio: tuple[str, list[User]]
) -> None:
    marker, (duc, anh, binh) = trio
    first = await search(svc, search=marker, pageSize=2, page=1, sortBy="fullName", sortOrder="asc")
    second = await search(svc, search=marker, pageSize=2, page=2, sortBy="fullName", sortOrder="asc")
    assert (first["page"], first["pageSize"], first["totalCount"], first["totalPages"]) == (1, 2, 3, 2)
    assert [i["id"] for i in first["items"] + second["items"]] == [str(anh.id), str(binh.id), str(duc.id)]
    newest_first = await search(svc, search=marker)
    assert [i["id"] for i in newest_first["items"]] == [str(binh.id), str(anh.id), str(duc.id)]
    beyond = await search(svc, search=marker, page=9)
    assert beyond["items"] == [] and beyond["totalCount"] == 3


async def test_fields_trims_each_item(svc: UserService, trio: tuple[str, list[User]]) -> None:
    marker, _ = trio
    page = await search(svc, search=marker, fields="id,email")
    assert all(set(item) == {"id", "email"} for item in page["items"]) and len(page["items"]) == 3


async def test_like_wildcards_in_a_search_are_plain_characters(
    svc: UserService, trio: tuple[str, list[User]]
) -> None:
    assert (await search(svc, search="%"))["totalCount"] == 0
    assert (await search(svc, search="_"))["totalCount"] == 0


async def test_without_a_search_every_user_is_listed(svc: UserService, trio: tuple[str, list[User]]) -> None:
    page = await search(svc, pageSize=1)
    assert page["totalCount"] >= 3 and len(page["items"]) == 1 and page["totalPages"] == page["totalCount"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": 101}, "pageSize"),
        ({"page": 0}, "page"),
        ({"sortBy": "password"}, "sortBy"),
        ({"sortOrder": "sideways"}, "sortOrder"),
        ({"fields": "id,passwordHash"}, "fields"),
        ({"search": "x" * 101}, "search"),
    ],
)
async def test_bad_list_parameters_are_400(
    svc: UserService, params: dict[str, str | int], field: str
) -> None:
    response = await svc.http.get("/api/users", headers=admin(), params=params)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field


async def test_an_admin_reads_any_profile(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    own = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    response = await svc.http.get(f"/api/users/{user.id}", headers=admin())
    assert response.status_code == 200 and response.json() == own
    for missing in (uuid.uuid4(), "not-a-uuid"):
        assert (await svc.http.get(f"/api/users/{missing}", headers=admin())).status_code == 404


async def test_plain_users_and_guests_cannot_search_or_read_others(
    svc: UserService, new_user: NewUser
) -> None:
    user, other = await new_user(), await new_user()
    for path in ("/api/users", f"/api/users/{other.id}"):
        forbidden = await svc.http.get(path, headers=user.headers)
        assert forbidden.status_code == 403 and forbidden.json()["error"] == "Forbidden"
        assert (await svc.http.get(path)).status_code == 401
