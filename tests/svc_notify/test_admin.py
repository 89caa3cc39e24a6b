"""What an Admin does in svc_notify: templates per channel and locale with versions and previews, the search
over every delivery, and the re-drive of messages parked in a DLQ once their cause is fixed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import eventually
from tests.svc_notify.support import Notify, Publish, encode, mails_to, sent, user_registered

ADMIN = {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "Admin"}
TEMPLATES = "/api/notifications/templates"


async def _template(notify: Notify, name: str) -> dict[str, Any]:
    response = await notify.http.get(f"{TEMPLATES}/{name}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def restore(notify: Notify) -> AsyncIterator[None]:
    """Put back every current text of the templates a test edits or retires."""
    before = {name: await _template(notify, name) for name in ("order-confirmed", "email-verification")}
    yield
    for name, template in before.items():
        now = {(v["channel"], v["locale"]): v for v in (await _template(notify, name))["variants"]}
        for text in template["variants"]:
            if now.get((text["channel"], text["locale"]), {}).get("body") != text["body"]:
                edit = {k: text[k] for k in ("channel", "locale", "subject", "body") if text[k] is not None}
                assert (
                    await notify.http.put(f"{TEMPLATES}/{name}", json=edit, headers=ADMIN)
                ).status_code == 200


async def test_the_preview_renders_samples_and_counts_sms_parts(notify: Notify) -> None:
    path = f"{TEMPLATES}/order-confirmed/preview"
    sms = await notify.http.post(path, json={"channel": "sms", "locale": "vi"}, headers=ADMIN)
    assert sms.status_code == 200, sms.text
    assert sms.json()["body"].startswith("Shop: don hang ORD-20261125-0001 da duoc xac nhan (1,250,000 VND).")
    assert sms.json()["sms"] == {"encoding": "GSM-7", "characters": len(sms.json()["body"]), "segments": 1}
    long_name = "Nguyễn " * 20
    named = await notify.http.post(
        path, json={"channel": "email", "values": {"fullName": long_name}}, headers=ADMIN
    )
    body = named.json()
    assert (body["subject"], body["sms"]) == ("Your order ORD-20261125-0001 is confirmed", None)
    assert f"Hello {long_name}," in body["body"]
    push = await notify.http.post(path, json={"channel": "push", "locale": "vi"}, headers=ADMIN)
    assert push.json()["subject"] == "Đơn hàng ORD-20261125-0001 đã xác nhận"


async def test_a_text_is_versioned_retired_and_falls_back_to_english(notify: Notify, restore: None) -> None:
    edit = {"channel": "sms", "locale": "vi", "body": "Shop: {orderNumber} xac nhan, {totalAmount} — {link}"}
    response = await notify.http.put(f"{TEMPLATES}/order-confirmed", json=edit, headers=ADMIN)
    assert response.status_code == 200, response.text
    [vi] = [v for v in response.json()["variants"] if (v["channel"], v["locale"]) == ("sms", "vi")]
    # The dash is not GSM-7: the whole text goes UCS-2.
    assert (vi["version"], vi["sms"]["encoding"]) == (2, "UCS-2")

    versions = f"{TEMPLATES}/order-confirmed/sms/vi/versions"
    retired = await notify.http.delete(f"{TEMPLATES}/order-confirmed/sms/vi", headers=ADMIN)
    assert retired.status_code == 204
    history = (await notify.http.get(versions, headers=ADMIN)).json()
    assert [(v["version"], v["body"] is None) for v in history] == [(3, True), (2, False), (1, False)]
    preview = await notify.http.post(
        f"{TEMPLATES}/order-confirmed/preview", json={"channel": "sms", "locale": "vi"}, headers=ADMIN
    )
    assert preview.json()["locale"] == "en" and preview.json()["body"].startswith("Shop: order ")
    again = await notify.http.delete(f"{TEMPLATES}/order-confirmed/sms/vi", headers=ADMIN)
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"channel": "sms", "subject": "Hi", "body": "{link}"}, "subject"),
        ({"channel": "push", "body": "{link}"}, "subject"),
        ({"channel": "fax", "subject": "Hi", "body": "{link}"}, "channel"),
        ({"locale": "fr", "subject": "Hi", "body": "{link}"}, "locale"),
        ({"channel": "sms", "body": "{orderNumber} {secret}"}, "body"),
    ],
)
async def test_a_text_that_breaks_the_rules_is_refused(
    notify: Notify, edit: dict[str, str], field: str
) -> None:
    response = await notify.http.put(f"{TEMPLATES}/order-confirmed", json=edit, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]


async def test_a_template_is_only_sent_on_its_channels(notify: Notify) -> None:
    edit = {"channel": "sms", "body": "{link}"}
    response = await notify.http.put(f"{TEMPLATES}/email-verification", json=edit, headers=ADMIN)
    assert response.status_code == 400 and response.json()["details"][0]["field"] == "channel"
    listed = (await notify.http.get(TEMPLATES, headers=ADMIN)).json()
    assert {t["name"]: t["kind"] for t in listed}["payment-refunded"] == "payment"


async def test_the_admin_search_filters_by_status_channel_recipient_template_and_time(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish
) -> None:
    event = user_registered()
    started = datetime.now(UTC) - timedelta(seconds=1)
    await publish(encode(event))
    row = await sent(notify, event)

    async def found(**query: str) -> list[str]:
        response = await notify.http.get("/api/notifications/search", params=query, headers=ADMIN)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    mine = str(row["id"])
    assert await found(recipient=event["email"]) == [mine]
    assert await found(
        recipient=event["email"], status="SENT", channel="email", template="email-verification"
    ) == [mine]
    assert await found(recipient=event["email"], status="FAILED") == []
    assert await found(recipient=event["email"], channel="sms") == []
    assert await found(recipient=event["email"], **{"from": started.isoformat()}) == [mine]
    assert await found(recipient=event["email"], to=started.isoformat()) == []
    [item] = (
        await notify.http.get(
            "/api/notifications/search", params={"recipient": event["email"]}, headers=ADMIN
        )
    ).json()["items"]
    assert (item["attempts"], item["providerId"], item["locale"]) == (1, row["provider_id"], "en")
    bad = await notify.http.get("/api/notifications/search?status=LOST", headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "status"
    naive = await notify.http.get("/api/notifications/search?from=2026-01-01T00:00:00", headers=ADMIN)
    assert naive.status_code == 400 and naive.json()["details"][0]["field"] == "from"
    user = {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "User"}
    assert (await notify.http.get("/api/notifications/search", headers=user)).status_code == 403


async def test_a_message_parked_for_a_missing_template_is_sent_once_redriven_after_the_fix(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish, restore: None
) -> None:
    for locale in ("en", "vi"):
        retired = await notify.http.delete(f"{TEMPLATES}/email-verification/email/{locale}", headers=ADMIN)
        assert retired.status_code == 204
    event = user_registered()
    await publish(encode(event))

    async def parked() -> list[dict[str, Any]]:
        response = await notify.http.get("/api/admin/dlq/notify.user.registered", headers=ADMIN)
        assert response.status_code == 200, response.text
        return [m for m in response.json() if m["messageId"] == event["eventId"] or m["body"] == event]

    # Retried after 1, 2 and 4 s (kit.bus), then parked with why.
    [message] = await eventually(parked, within=20)
    assert message["error"] == "MissingTemplate('email-verification has no email text in en')"
    queues = (await notify.http.get("/api/admin/dlq", headers=ADMIN)).json()
    assert any(q["queue"] == "notify.user.registered.dlq" and q["messages"] >= 1 for q in queues)

    text = {"subject": "Verify your email", "body": "Hello {fullName}: {link}"}
    assert (
        await notify.http.put(f"{TEMPLATES}/email-verification", json=text, headers=ADMIN)
    ).status_code == 200
    redriven = await notify.http.post("/api/admin/dlq/notify.user.registered.dlq/redrive", headers=ADMIN)
    assert redriven.status_code == 200 and redriven.json()["redriven"] >= 1
    [mail] = await eventually(lambda: mails_to(sink, event["email"]))
    assert mail["subject"] == "Verify your email" and event["verificationToken"] in mail["body"]
    assert await parked() == []
    missing = await notify.http.get("/api/admin/dlq/notify.no-such-key", headers=ADMIN)
    assert missing.status_code == 404
