"""The HTTP API: the caller's own notifications, and the templates only an Admin reads and edits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import eventually
from tests.svc_notify.support import Notify, Publish, encode, mails_to, sent, user_registered

TEMPLATE = "/api/notifications/templates/email-verification"


def caller(*roles: str) -> dict[str, str]:
    """The headers the edge sets for a signed-in user."""
    return {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": ",".join(roles or ("User",))}


ADMIN = caller("Admin")


async def _notify_user(notify: Notify, publish: Publish, user: dict[str, str]) -> dict[str, Any]:
    event = user_registered(uuid.UUID(user["X-User-Id"]))
    await publish(encode(event))
    await sent(notify, event)
    return event


def variant(template: dict[str, Any], channel: str = "email", locale: str = "en") -> dict[str, Any]:
    """The current text of one channel and locale in a template as the API shows it."""
    [found] = [v for v in template["variants"] if (v["channel"], v["locale"]) == (channel, locale)]
    return found  # type: ignore[no-any-return]


@pytest.fixture
async def original_template(notify: Notify) -> AsyncIterator[dict[str, Any]]:
    """The seeded template's English mail, put back after a test that edits it."""
    original = variant((await notify.http.get(TEMPLATE, headers=ADMIN)).json())
    yield original
    edit = {"subject": original["subject"], "body": original["body"]}
    assert (await notify.http.put(TEMPLATE, json=edit, headers=ADMIN)).status_code == 200


async def test_callers_see_only_their_own_notifications_newest_first(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish
) -> None:
    alice, bob = caller(), caller()
    first = await _notify_user(notify, publish, alice)
    second = await _notify_user(notify, publish, alice)
    await _notify_user(notify, publish, bob)

    response = await notify.http.get("/api/notifications", params={"pageSize": 1}, headers=alice)
    assert response.status_code == 200
    page = response.json()
    assert {k: page[k] for k in ("page", "pageSize", "totalCount", "totalPages")} == {
        "page": 1,
        "pageSize": 1,
        "totalCount": 2,
        "totalPages": 2,
    }
    [newest] = page["items"]
    assert (newest["recipient"], newest["status"], newest["channel"]) == (second["email"], "SENT", "email")
    assert second["verificationToken"] not in newest["body"]
    older = (await notify.http.get("/api/notifications?page=2&pageSize=1", headers=alice)).json()
    assert [item["recipient"] for item in older["items"]] == [first["email"]]
    assert (await notify.http.get("/api/notifications", headers=bob)).json()["totalCount"] == 1


async def test_notifications_require_a_signed_in_caller(notify: Notify) -> None:
    response = await notify.http.get("/api/notifications")
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


async def test_admin_reads_a_template_with_its_placeholders(notify: Notify) -> None:
    response = await notify.http.get(TEMPLATE, headers=ADMIN)
    assert response.status_code == 200
    template = response.json()
    assert template["name"] == "email-verification"
    assert sorted(template["placeholders"]) == ["email", "expiresAt", "fullName", "link"]
    assert (template["kind"], template["channels"]) == ("security", ["email"])
    assert sorted((v["channel"], v["locale"]) for v in template["variants"]) == [
        ("email", "en"),
        ("email", "vi"),
    ]
    assert "{link}" in variant(template)["body"] and "{link}" in variant(template, locale="vi")["body"]


async def test_templates_are_for_admins_only(notify: Notify) -> None:
    edit = {"subject": "Hi", "body": "{link}"}
    assert (await notify.http.get(TEMPLATE, headers=caller())).status_code == 403
    assert (await notify.http.put(TEMPLATE, json=edit, headers=caller("Seller"))).status_code == 403
    assert (await notify.http.get(TEMPLATE)).status_code == 401


async def test_unknown_template_is_not_found(notify: Notify) -> None:
    path = "/api/notifications/templates/no-such-template"
    assert (await notify.http.get(path, headers=ADMIN)).status_code == 404
    response = await notify.http.put(path, json={"subject": "Hi", "body": "Hello"}, headers=ADMIN)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"subject": "Hi {nickname}", "body": "{link}"}, "subject"),
        ({"subject": "Hi", "body": "{link} {orderNumber}"}, "body"),
        ({"subject": "Hi", "body": "{link.__class__}"}, "body"),
        ({"subject": "Hi", "body": "a lone { brace"}, "body"),
        ({"subject": "Hi\r\nBcc: someone@example.com", "body": "{link}"}, "subject"),
        ({"subject": "", "body": "{link}"}, "subject"),
    ],
)
async def test_template_edit_with_unsupported_content_is_refused(
    notify: Notify, edit: dict[str, str], field: str
) -> None:
    response = await notify.http.put(TEMPLATE, json=edit, headers=ADMIN)
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["details"]] == [field]


async def test_edited_template_is_used_for_the_next_mail(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish, original_template: dict[str, Any]
) -> None:
    edit = {"subject": "Welcome, {fullName}", "body": "Confirm {email}: {link}\n{{literal braces}}"}
    response = await notify.http.put(TEMPLATE, json=edit, headers=ADMIN)
    assert response.status_code == 200
    edited = variant(response.json())
    assert (edited["subject"], edited["version"]) == (edit["subject"], original_template["version"] + 1)

    event = user_registered()
    await publish(encode(event))
    [message] = await eventually(lambda: mails_to(sink, event["email"]))
    assert message["subject"] == f"Welcome, {event['fullName']}"
    assert message["body"].startswith(f"Confirm {event['email']}: ")
    assert f"token={event['verificationToken']}" in message["body"]
    assert "{literal braces}" in message["body"]


async def _delivered(notify: Notify, user: dict[str, str], subject: str, minutes_ago: int) -> None:
    """A delivered notification for `user`, as svc_notify would have recorded it."""
    await notify.db.execute(
        """
        INSERT INTO notifications
            (id, event_id, user_id, channel, recipient, template, subject, body, status, created_at, sent_at)
        VALUES ($1, $2, $3, 'email', 'a@shop.local', 'email-verification', $4, 'b', 'SENT',
                now() - make_interval(mins => $5), now() - make_interval(mins => $5))
        """,
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.UUID(user["X-User-Id"]),
        subject,
        minutes_ago,
    )


async def test_notifications_are_searched_sorted_and_trimmed_as_every_list(notify: Notify) -> None:
    user = caller()
    for subject, minutes_ago in (("Your order shipped", 3), ("Verify 100% of it_now", 2), ("Welcome", 1)):
        await _delivered(notify, user, subject, minutes_ago)

    async def subjects(**query: str) -> list[str]:
        response = await notify.http.get("/api/notifications", params=query, headers=user)
        assert response.status_code == 200, response.text
        return [item["subject"] for item in response.json()["items"]]

    assert await subjects() == ["Welcome", "Verify 100% of it_now", "Your order shipped"]
    assert await subjects(sortBy="subject", sortOrder="asc") == sorted(await subjects())
    assert await subjects(sortBy="createdAt", sortOrder="asc") == [
        "Your order shipped",
        "Verify 100% of it_now",
        "Welcome",
    ]
    assert await subjects(search="ORDER") == ["Your order shipped"]
    # Wildcards in the search are plain characters.
    assert await subjects(search="100%") == ["Verify 100% of it_now"]
    assert await subjects(search="_") == ["Verify 100% of it_now"]
    assert await subjects(search="\\") == []
    page = (await notify.http.get("/api/notifications?fields=subject,status", headers=user)).json()
    assert page["items"][0] == {"subject": "Welcome", "status": "SENT"}
    assert page["totalCount"] == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sortBy=recipient", "sortBy"),
        ("sortOrder=up", "sortOrder"),
        ("fields=id,userId", "fields"),
        ("search=" + "x" * 101, "search"),
    ],
)
async def test_list_parameters_out_of_range_are_a_400_naming_them(
    notify: Notify, query: str, field: str
) -> None:
    response = await notify.http.get(f"/api/notifications?{query}", headers=caller())
    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == [field]
