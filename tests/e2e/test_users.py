"""svc_user through the edge: profiles born from sign-up, edits, addresses, avatars, admin search."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import aiormq
import httpx
import pytest

from tests.e2e.support import bearer, mailed_token, new_email
from tests.support import eventually
from tests.svc_user.support import ProfileUpdates, png

pytestmark = pytest.mark.e2e

ADDRESS = {
    "fullName": "E2E",
    "phone": "+84912345678",
    "line1": "1 Main St",
    "city": "Hà Nội",
    "country": "VN",
}


@dataclass(frozen=True)
class Customer:
    id: str
    email: str
    headers: dict[str, str]


async def login(edge: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["accessToken"])


async def sign_up(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient, full_name: str = "Hoa Nguyễn"
) -> Customer:
    """Register, verify through the mailed link, log in, and wait for the profile `user.verified` creates."""
    email, password = new_email(), "Secret123!"
    registered = await edge.post(
        "/api/auth/register", json={"email": email, "password": password, "fullName": full_name}
    )
    assert registered.status_code == 201, registered.text
    token = await mailed_token(mail, email)
    assert (
        await edge.post("/api/auth/verify-email", json={"email": email, "token": token})
    ).status_code == 200
    headers = await login(edge, email, password)

    async def profile() -> bool:
        return (await edge.get("/api/users/me", headers=headers)).status_code == 200

    await eventually(profile)
    return Customer(registered.json()["userId"], email, headers)


async def test_the_seed_accounts_have_profiles(edge: httpx.AsyncClient) -> None:
    headers = await login(edge, "user@shop.local", "User123!")

    async def profile() -> dict[str, Any] | None:
        response = await edge.get("/api/users/me", headers=headers)
        return response.json() if response.status_code == 200 else None

    me = await eventually(profile)
    assert me is not None
    assert me["email"] == "user@shop.local" and me["preferences"]["language"] == "vi"


async def test_a_new_customer_gets_a_profile_edits_it_and_each_change_is_announced_once(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    customer = await sign_up(edge, mail, "Hoa Nguyễn")
    me = (await edge.get("/api/users/me", headers=customer.headers)).json()
    assert (me["id"], me["email"], me["fullName"]) == (customer.id, customer.email, "Hoa Nguyễn")

    connection = await aiormq.connect(os.environ["AMQP_URL"])
    updates = await ProfileUpdates.listen(connection, customer.id)

    patched = await edge.patch(
        "/api/users/me", headers=customer.headers, json={"fullName": "Hoa Trần", "phone": "+84 90 111 2222"}
    )
    assert patched.status_code == 200 and patched.json()["phone"] == "+84901112222"
    assert (await edge.get("/api/users/me", headers=customer.headers)).json()["fullName"] == "Hoa Trần"

    for forbidden in ({"email": "boss@shop.local"}, {"roles": ["Admin"]}, {"id": str(uuid.uuid4())}):
        refused = await edge.patch("/api/users/me", headers=customer.headers, json=forbidden)
        assert refused.status_code == 400 and refused.json()["error"] == "ValidationError"
    me = (await edge.get("/api/users/me", headers=customer.headers)).json()
    assert (me["id"], me["email"]) == (customer.id, customer.email)

    assert [e["updatedFields"] for e in await updates.settled(1)] == [["fullName", "phone"]]
    await connection.close()


async def test_customers_see_and_touch_only_their_own_addresses(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    owner, other = await sign_up(edge, mail), await sign_up(edge, mail)
    added = await edge.post("/api/users/me/addresses", headers=owner.headers, json=ADDRESS)
    assert added.status_code == 201 and added.json()["isDefault"] is True
    path = f"/api/users/me/addresses/{added.json()['id']}"

    assert (await edge.get("/api/users/me/addresses", headers=other.headers)).json()["items"] == []
    assert (await edge.put(path, headers=other.headers, json=ADDRESS)).status_code == 404
    assert (await edge.delete(path, headers=other.headers)).status_code == 404
    assert (await edge.get("/api/users/me/addresses")).status_code == 401

    updated = await edge.put(path, headers=owner.headers, json={**ADDRESS, "line1": "2 Main St"})
    assert updated.status_code == 200 and updated.json()["line1"] == "2 Main St"
    assert (await edge.delete(path, headers=owner.headers)).status_code == 204
    assert (await edge.get("/api/users/me/addresses", headers=owner.headers)).json()["totalCount"] == 0


async def test_an_avatar_is_a_checked_image_served_publicly_with_caching_headers(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    customer = await sign_up(edge, mail)
    as_png = {**customer.headers, "Content-Type": "image/png"}
    disguised = await edge.put(
        "/api/users/me/avatar", headers=as_png, content=b"<?php system($_GET['c']); ?>"
    )
    assert disguised.status_code == 415 and disguised.json()["error"] == "UnsupportedMediaType"
    too_big = await edge.put(
        "/api/users/me/avatar", headers=as_png, content=png() + b"\x00" * 2 * 1024 * 1024
    )
    assert too_big.status_code == 413

    uploaded = await edge.put("/api/users/me/avatar", headers=as_png, content=png())
    assert uploaded.status_code == 200, uploaded.text
    url = httpx.URL(uploaded.json()["avatarUrl"])
    served = await edge.get(url.path, params=url.params)  # no token: avatars are public
    assert served.status_code == 200 and served.content == png()
    assert served.headers["content-type"] == "image/png" and "immutable" in served.headers["cache-control"]
    again = await edge.get(url.path, headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304


async def test_an_admin_searches_users_and_a_customer_may_not(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    marker = uuid.uuid4().hex[:8]
    customer = await sign_up(edge, mail, f"Search {marker} Target")
    admin = await login(edge, "admin@shop.local", "Admin123!")

    found = await edge.get("/api/users", headers=admin, params={"search": marker, "pageSize": 5})
    assert found.status_code == 200
    page = found.json()
    assert [i["id"] for i in page["items"]] == [customer.id]
    assert (page["totalCount"], page["page"], page["pageSize"], page["totalPages"]) == (1, 1, 5, 1)
    trimmed = await edge.get("/api/users", headers=admin, params={"search": marker, "fields": "id,email"})
    assert trimmed.json()["items"] == [{"id": customer.id, "email": customer.email}]
    one = await edge.get(f"/api/users/{customer.id}", headers=admin)
    assert one.status_code == 200 and one.json()["email"] == customer.email

    for path in ("/api/users", f"/api/users/{customer.id}"):
        refused = await edge.get(path, headers=customer.headers)
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
