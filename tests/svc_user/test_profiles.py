"""Profiles: created from `user.verified` once, personal fields and preferences, cache, announcements."""

from __future__ import annotations

import json
import os
import uuid

import aiormq
import pytest
from prometheus_client import REGISTRY

from kit import settings
from kit.app import make_app
from svc_user.app import service
from tests.support import eventually, identity, serve
from tests.svc_user.conftest import Announce, NewUser
from tests.svc_user.support import (
    QUEUE,
    ProfileUpdates,
    UserService,
    announced,
    announcements,
    user_verified,
)

DEFAULT_PREFERENCES = {
    "language": "vi",
    "currency": "VND",
    "notifications": {
        "email": True,
        "sms": False,
        "push": False,
        **{
            kind: {"email": True, "sms": True, "push": True}
            for kind in ("orderUpdates", "payment", "security", "marketing")
        },
    },
    "marketingConsent": False,
    "country": "VN",
}


async def test_a_verified_account_gets_a_profile_with_default_preferences(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user("Lê Văn Cường")
    profile = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    assert profile["id"] == str(user.id) and profile["email"] == user.email
    assert profile["fullName"] == "Lê Văn Cường"
    assert profile["phone"] is None and profile["avatarUrl"] is None and profile["dateOfBirth"] is None
    assert profile["preferences"] == DEFAULT_PREFERENCES
    assert profile["createdAt"] == profile["updatedAt"]


async def test_me_is_404_until_the_account_is_verified(svc: UserService) -> None:
    response = await svc.http.get("/api/users/me", headers=identity(email="new@shop.test"))
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
    assert (await svc.http.get("/api/users/me")).status_code == 401


def _handled() -> float:
    """Deliveries of `user.verified` the consumer finished, duplicates skipped by the inbox included."""
    labels = {"queue": QUEUE, "outcome": "ok"}
    return REGISTRY.get_sample_value("shop_events_consumed_total", labels) or 0.0


async def test_a_redelivered_or_repeated_verification_creates_the_profile_once(
    svc: UserService, announce: Announce
) -> None:
    user_id, email = uuid.uuid4(), f"{uuid.uuid4().hex[:10]}@shop.test"
    message = user_verified(user_id, email, "First Name")
    handled = _handled()
    await announce(message)
    await announce(message)  # the same event delivered again
    await announce(user_verified(user_id, email, "Second Name"))  # another event for the same account

    async def all_handled() -> bool:
        return _handled() >= handled + 3

    await eventually(all_handled)
    rows = await svc.deps.db.fetch("SELECT full_name FROM profiles WHERE id = $1", user_id)
    assert [r["full_name"] for r in rows] == ["First Name"]
    assert await announced(svc.deps.db, user_id) == []


async def test_patch_changes_personal_fields_and_announces_them_once(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    before = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    response = await svc.http.patch(
        "/api/users/me",
        headers=user.headers,
        json={"fullName": " Phạm Minh Đức ", "phone": "+84 912-345-678", "dateOfBirth": "1990-04-30"},
    )
    assert response.status_code == 200, response.text
    profile = response.json()
    assert (profile["fullName"], profile["phone"], profile["dateOfBirth"]) == (
        "Phạm Minh Đức",
        "+84912345678",
        "1990-04-30",
    )
    assert profile["email"] == user.email and profile["updatedAt"] > before["updatedAt"]
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json() == profile

    cleared = await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": None})
    assert cleared.json()["phone"] is None and cleared.json()["fullName"] == "Phạm Minh Đức"
    assert await announced(svc.deps.db, user.id) == [["dateOfBirth", "fullName", "phone"], ["phone"]]
    # The new name travels with the event for services that show it; only when it changed.
    assert [e["fullName"] for e in await announcements(svc.deps.db, user.id)] == ["Phạm Minh Đức", None]
    # So does the phone number, for SMS: the new one, then its removal.
    assert [e["phone"] for e in await announcements(svc.deps.db, user.id)] == ["+84912345678", None]


async def test_changed_preferences_are_announced_whole_for_notifications(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    wanted = {"language": "en", "notifications": {"sms": True, "marketing": {"sms": False}}}
    response = await svc.http.put("/api/users/me/preferences", headers=user.headers, json=wanted)
    assert response.status_code == 200, response.text
    again = await svc.http.put("/api/users/me/preferences", headers=user.headers, json=wanted)
    assert again.json() == response.json()
    rows = await svc.deps.db.fetch(
        "SELECT payload FROM outbox WHERE routing_key = 'user.preferences.updated'"
        " AND convert_from(payload, 'UTF8')::jsonb->>'userId' = $1",
        str(user.id),
    )
    [preferences] = [json.loads(row["payload"])["preferences"] for row in rows]  # the repeat changed nothing
    assert preferences == response.json()
    assert preferences["notifications"]["sms"] is True
    assert preferences["notifications"]["marketing"] == {"email": True, "sms": False, "push": True}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0912345678", "+84912345678"),
        ("0912 345 678", "+84912345678"),
        ("091-234-5678", "+84912345678"),
        ("(028) 3812 3456", "+842838123456"),
        ("+84 912 345 678", "+84912345678"),
        ("0084912345678", "+84912345678"),
        ("+1 650-253-0000", "+16502530000"),
    ],
)
async def test_a_phone_is_taken_as_people_in_vietnam_write_it_and_stored_in_e164(
    svc: UserService, new_user: NewUser, typed: str, stored: str
) -> None:
    user = await new_user()
    response = await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": typed})
    assert response.status_code == 200, response.text
    assert response.json()["phone"] == stored
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json()["phone"] == stored


async def test_a_national_number_is_read_in_the_country_the_user_prefers(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    await svc.http.put("/api/users/me/preferences", headers=user.headers, json={"country": "us"})
    american = await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": "(650) 253-0000"})
    assert american.status_code == 200 and american.json()["phone"] == "+16502530000"
    assert american.json()["preferences"]["country"] == "US"
    # A Vietnamese mobile in national form is no US number; the 400 says what would have been taken.
    refused = await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": "0912345678"})
    assert refused.status_code == 400 and refused.json()["details"][0]["field"] == "phone"
    assert "in US" in refused.json()["message"]
    # Written internationally it is taken wherever the user lives.
    taken = await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": "+84912345678"})
    assert taken.status_code == 200 and taken.json()["phone"] == "+84912345678"


async def test_a_patch_that_changes_nothing_announces_nothing(svc: UserService, new_user: NewUser) -> None:
    user = await new_user("Same Name")
    for body in ({}, {"fullName": "Same Name"}, {"phone": None}):
        response = await svc.http.patch("/api/users/me", headers=user.headers, json=body)
        assert response.status_code == 200 and response.json()["fullName"] == "Same Name"
    assert await announced(svc.deps.db, user.id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "boss@shop.test"},
        {"id": "00000000-0000-0000-0000-000000000001"},
        {"roles": ["Admin"]},
        {"fullName": "Ok", "createdAt": "2000-01-01T00:00:00Z"},
        {"updatedAt": "2000-01-01T00:00:00Z"},
        {"avatarUrl": "https://evil.example/x.png"},
        {"preferences": {"marketingConsent": True}},
    ],
)
async def test_mass_assignment_is_refused_and_changes_nothing(
    svc: UserService, new_user: NewUser, body: dict[str, object]
) -> None:
    user = await new_user("Unchanged")
    response = await svc.http.patch("/api/users/me", headers=user.headers, json=body)
    assert response.status_code == 400 and response.json()["error"] == "ValidationError"
    forbidden = next(k for k in body if k != "fullName")
    assert f"`{forbidden}`" in response.json()["message"]
    profile = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    assert profile["fullName"] == "Unchanged" and profile["email"] == user.email
    assert await announced(svc.deps.db, user.id) == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/users/me", {"fullName": "   "}, "fullName"),
        ("/api/users/me", {"fullName": None}, "fullName"),
        ("/api/users/me", {"fullName": "x" * 101}, "fullName"),
        ("/api/users/me", {"phone": "0912"}, "phone"),
        ("/api/users/me", {"phone": "call me"}, "phone"),
        ("/api/users/me", {"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ("/api/users/me", {"dateOfBirth": "30/04/1990"}, "dateOfBirth"),
        ("/api/users/me/preferences", {"language": "klingon"}, "language"),
        ("/api/users/me/preferences", {"currency": "BTC"}, "currency"),
        ("/api/users/me/preferences", {"notifications": {"fax": True}}, "notifications.fax"),
        ("/api/users/me/preferences", {"notifications": {"email": "yes"}}, "notifications.email"),
        ("/api/users/me/preferences", {"marketingConsent": 1}, "marketingConsent"),
        ("/api/users/me/preferences", {"country": "XX"}, "country"),
        ("/api/users/me", {"phone": "   "}, "phone"),
        ("/api/users/me", {"phone": "0123456789"}, "phone"),
    ],
)
async def test_invalid_input_is_400_naming_the_field_and_changes_nothing(
    svc: UserService, new_user: NewUser, path: str, body: dict[str, object], field: str
) -> None:
    user = await new_user()
    before = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    method = "PATCH" if path == "/api/users/me" else "PUT"
    response = await svc.http.request(method, path, headers=user.headers, json=body)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json() == before
    assert await announced(svc.deps.db, user.id) == []


async def test_preferences_are_validated_replaced_whole_and_shown_in_the_profile(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user()
    wanted = {
        "language": "en",
        "currency": "USD",
        "notifications": {
            **DEFAULT_PREFERENCES["notifications"],  # type: ignore[dict-item]
            "email": False,
            "sms": True,
            "push": True,
            "marketing": {"email": True, "sms": False, "push": False},
        },
        "marketingConsent": True,
        "country": "VN",
    }
    response = await svc.http.put("/api/users/me/preferences", headers=user.headers, json=wanted)
    assert response.status_code == 200 and response.json() == wanted
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json()["preferences"] == wanted

    # PUT replaces the document: what is left out returns to its default (consent is never assumed).
    response = await svc.http.put("/api/users/me/preferences", headers=user.headers, json={"language": "en"})
    assert response.json() == {**DEFAULT_PREFERENCES, "language": "en"}
    assert await announced(svc.deps.db, user.id) == [
        [
            "preferences.currency",
            "preferences.language",
            "preferences.marketingConsent",
            "preferences.notifications",
        ],
        ["preferences.currency", "preferences.marketingConsent", "preferences.notifications"],
    ]


async def test_profile_reads_come_from_the_cache_until_a_change_invalidates_it(
    svc: UserService, new_user: NewUser
) -> None:
    user = await new_user("Cached Name")
    await svc.http.get("/api/users/me", headers=user.headers)
    # Behind the service's back: a cached read does not see it...
    await svc.deps.db.execute("UPDATE profiles SET full_name = 'Changed In SQL' WHERE id = $1", user.id)
    hits = svc.deps.cache.hits  # type: ignore[union-attr]
    assert (await svc.http.get("/api/users/me", headers=user.headers)).json()["fullName"] == "Cached Name"
    assert svc.deps.cache.hits == hits + 1  # type: ignore[union-attr]
    # ...until a change through the API drops the cached document.
    await svc.http.patch("/api/users/me", headers=user.headers, json={"phone": "+84987654321"})
    fresh = (await svc.http.get("/api/users/me", headers=user.headers)).json()
    assert (fresh["fullName"], fresh["phone"]) == ("Changed In SQL", "+84987654321")
    redis = svc.deps.redis
    assert redis is not None
    version = (await redis.get(f"user:profile:{user.id}")).decode()
    assert 29 * 60 < await redis.ttl(f"user:profile:{user.id}:v{version}:json") <= 30 * 60


async def test_without_redis_profiles_are_served_and_changed_from_the_database(
    new_user: NewUser,
) -> None:
    user = await new_user("No Cache")
    config = settings.load("user", {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"})
    async with serve(make_app(service, config)) as client:
        assert (await client.get("/api/users/me", headers=user.headers)).json()["fullName"] == "No Cache"
        patched = await client.patch("/api/users/me", headers=user.headers, json={"fullName": "Still Works"})
        assert patched.status_code == 200
        assert (await client.get("/api/users/me", headers=user.headers)).json()["fullName"] == "Still Works"
        ready = await client.get("/health/ready")
        assert ready.json()["checks"]["redis"].startswith("down")


async def test_each_change_is_published_to_the_broker_exactly_once(
    svc: UserService, new_user: NewUser, broker: aiormq.abc.AbstractConnection
) -> None:
    user = await new_user()
    updates = await ProfileUpdates.listen(broker, user.id)
    await svc.http.patch("/api/users/me", headers=user.headers, json={"fullName": "Once"})
    await svc.http.patch("/api/users/me", headers=user.headers, json={"fullName": "Once"})  # no change
    await svc.http.put("/api/users/me/preferences", headers=user.headers, json={"marketingConsent": True})

    received = await updates.settled(2)
    assert [e["updatedFields"] for e in received] == [["fullName"], ["preferences.marketingConsent"]]
    assert len({e["eventId"] for e in received}) == 2


async def test_only_the_caller_is_changed(svc: UserService, new_user: NewUser) -> None:
    first, second = await new_user("First"), await new_user("Second")
    await svc.http.patch("/api/users/me", headers=first.headers, json={"fullName": "First Changed"})
    assert (await svc.http.get("/api/users/me", headers=second.headers)).json()["fullName"] == "Second"


async def test_malformed_json_is_a_400(svc: UserService, new_user: NewUser) -> None:
    user = await new_user()
    response = await svc.http.patch(
        "/api/users/me",
        headers={**user.headers, "Content-Type": "application/json"},
        content=b'{"fullName": ',
    )
    assert response.status_code == 400 and response.json()["error"] == "ValidationError"
