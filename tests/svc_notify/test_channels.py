"""SMS and push beside email: the channels a user wants, retries, refusals, expired subscriptions and
delivery reports, through the dev SMS sink (Twilio's API) and the dev push sink (Web Push)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import httpx
import pytest

from kit import settings
from svc_notify import twilio
from tests.support import eventually
from tests.svc_notify.support import Notify, Send, confirmed, customer, event, processed

# Every test mails too: the mail sink listens, so the mail is out at once rather than retried.
pytestmark = pytest.mark.usefixtures("sink")
SETTLED = ("SENT", "DELIVERED", "FAILED", "BOUNCED")


def headers(user: Mapping[str, object]) -> dict[str, str]:
    return {"X-User-Id": str(user["userId"]), "X-User-Roles": "User"}


def new_phone() -> str:
    return "+8490" + "".join(random.choices("0123456789", k=7))


async def prefer(notify: Notify, send: Send, user: Mapping[str, object], **notifications: object) -> None:
    """Announce `user`'s preferences as svc_user does: English, email on, and the given switches."""
    preferences = {"language": "en", "notifications": {"email": True, **notifications}}
    announced = event(userId=user["userId"], preferences=preferences)
    await send("user.exchange", "user.preferences.updated", announced)
    await processed(notify, announced)


async def give_phone(notify: Notify, send: Send, user: Mapping[str, object]) -> str:
    phone = new_phone()
    announced = event(userId=user["userId"], updatedFields=["phone"], phone=phone)
    await send("user.exchange", "user.profile.updated", announced)
    await processed(notify, announced)
    return phone


async def subscribe(
    notify: Notify, push_sink: httpx.AsyncClient, user: Mapping[str, object]
) -> dict[str, Any]:
    """A subscription made by the push sink (as a browser would) and registered for `user`."""
    made = (await push_sink.post("/api/subscriptions")).json()
    body = {"endpoint": made["endpoint"], "keys": made["keys"]}
    registered = await notify.http.post(
        "/api/notifications/push/subscriptions", json=body, headers=headers(user)
    )
    assert registered.status_code == 201, registered.text
    return {**made, "registered": registered.json()}


async def deliveries(
    notify: Notify, published: Mapping[str, object], count: int
) -> dict[str, asyncpg.Record]:
    """The event's `count` notifications by channel, once each has settled."""
    event_id = uuid.UUID(str(published["eventId"]))

    async def check() -> dict[str, asyncpg.Record] | None:
        rows = await notify.db.fetch("SELECT * FROM notifications WHERE event_id = $1", event_id)
        done = len(rows) == count and all(row["status"] in SETTLED for row in rows)
        return {row["channel"]: row for row in rows} if done else None

    return await eventually(check)


async def texts(sms_sink: httpx.AsyncClient, phone: str) -> list[dict[str, Any]]:
    return (await sms_sink.get("/api/messages", params={"to": phone})).json()  # type: ignore[no-any-return]


async def pushes(push_sink: httpx.AsyncClient, subscription: Mapping[str, Any]) -> list[dict[str, Any]]:
    response = await push_sink.get("/api/messages", params={"subscription": subscription["id"]})
    return response.json()  # type: ignore[no-any-return]


async def sms_order(
    notify: Notify, send: Send, sms_sink: httpx.AsyncClient, **fault: object
) -> tuple[str, dict[str, object]]:
    """A customer with SMS on and a phone number whose order is confirmed, the provider primed with
    `fault` (failures, status) for that number first: (phone, the order.confirmed event)."""
    user = await customer(notify, send)
    await prefer(notify, send, user, sms=True)
    phone = await give_phone(notify, send, user)
    if fault:
        assert (await sms_sink.post("/api/faults", json={"to": phone, **fault})).status_code == 201
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)
    return phone, order


async def test_a_buyer_with_sms_and_push_on_gets_order_confirmed_on_all_three_channels(
    notify: Notify,
    sink: httpx.AsyncClient,
    sms_sink: httpx.AsyncClient,
    push_sink: httpx.AsyncClient,
    send: Send,
) -> None:
    user = await customer(notify, send)
    await prefer(notify, send, user, sms=True, push=True)
    phone = await give_phone(notify, send, user)
    subscription = await subscribe(notify, push_sink, user)
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)

    rows = await deliveries(notify, order, 3)
    assert {channel: row["status"] for channel, row in rows.items()} == {
        "email": "SENT",
        "sms": "SENT",
        "push": "SENT",
    }
    assert rows["sms"]["recipient"] == phone and rows["push"]["recipient"] == subscription["registered"]["id"]
    [text] = await texts(sms_sink, phone)
    assert text["body"].startswith("Shop: order ORD-20261125-0001 is confirmed (1,250,000 VND).")
    assert (text["sid"], text["encoding"], text["segments"]) == (rows["sms"]["provider_id"], "GSM-7", 1)
    assert text["statusCallback"].endswith(f"/api/notifications/sms/status?id={rows['sms']['id']}")
    [push] = await pushes(push_sink, subscription)
    # Decrypted by the sink with the subscription's private key: the id is the client's dedupe key.
    assert push["payload"] == {
        "id": str(rows["push"]["id"]),
        "template": "order-confirmed",
        "title": "Order ORD-20261125-0001 confirmed",
        "body": "Paid (1,250,000 VND) and being prepared.",
    }
    assert (push["topic"], push["ttl"]) == (rows["push"]["id"].hex, 86400)
    mails = (await sink.get("/api/messages", params={"to": user["email"]})).json()
    assert [m["subject"] for m in mails] == ["Your order ORD-20261125-0001 is confirmed"]


async def test_no_message_goes_out_on_a_channel_the_user_turned_off(
    notify: Notify, sms_sink: httpx.AsyncClient, push_sink: httpx.AsyncClient, send: Send
) -> None:
    user = await customer(notify, send)
    phone = await give_phone(notify, send, user)
    subscription = await subscribe(notify, push_sink, user)
    # SMS off altogether; push on, but not for order updates.
    await prefer(notify, send, user, sms=False, push=True, orderUpdates={"push": False})
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)

    assert list(await deliveries(notify, order, 1)) == ["email"]
    assert await texts(sms_sink, phone) == [] and await pushes(push_sink, subscription) == []


async def test_security_mail_is_sent_by_email_even_with_email_turned_off(notify: Notify, send: Send) -> None:
    user = await customer(notify, send)
    await prefer(notify, send, user, email=False)
    resent = event(
        userId=user["userId"],
        email=user["email"],
        fullName=user["fullName"],
        verificationToken="t0ken",
        expiresAt="2030-01-01T00:00:00Z",
    )
    await send("auth.exchange", "user.registered", resent)
    assert (await deliveries(notify, resent, 1))["email"]["template"] == "email-verification"


async def test_a_vietnamese_speaker_gets_the_vietnamese_text(notify: Notify, send: Send) -> None:
    user = await customer(notify, send)
    preferences = {"language": "vi", "notifications": {"email": True}}
    announced = event(userId=user["userId"], preferences=preferences)
    await send("user.exchange", "user.preferences.updated", announced)
    await processed(notify, announced)
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)
    mail = (await deliveries(notify, order, 1))["email"]
    assert (mail["status"], mail["locale"]) == ("SENT", "vi")
    assert mail["subject"] == "Đơn hàng ORD-20261125-0001 đã được xác nhận"


async def test_an_sms_provider_failing_twice_is_sent_on_the_third_attempt(
    notify: Notify, sms_sink: httpx.AsyncClient, send: Send
) -> None:
    phone, order = await sms_order(notify, send, sms_sink, failures=2)

    sms = (await deliveries(notify, order, 2))["sms"]
    assert (sms["status"], sms["attempts"]) == ("SENT", 3)
    assert sms["last_error"].startswith("Twilio 503")
    assert len(await texts(sms_sink, phone)) == 1


async def test_an_sms_the_provider_refuses_fails_without_retries(
    notify: Notify, sms_sink: httpx.AsyncClient, send: Send
) -> None:
    _, order = await sms_order(notify, send, sms_sink, failures=1, status=400)

    sms = (await deliveries(notify, order, 2))["sms"]
    assert (sms["status"], sms["attempts"]) == ("FAILED", 1)


async def test_an_sms_still_failing_after_the_last_attempt_is_failed(
    notify: Notify, sms_sink: httpx.AsyncClient, send: Send
) -> None:
    phone, order = await sms_order(notify, send, sms_sink, failures=100)

    async def failed() -> asyncpg.Record | None:
        return await notify.db.fetchrow(
            "SELECT * FROM notifications WHERE event_id = $1 AND channel = 'sms' AND status = 'FAILED'",
            uuid.UUID(str(order["eventId"])),
        )

    # Six attempts, 0.2 to 3.2 s apart (QUICK_RETRIES), jitter taking up to half of each away.
    assert (await eventually(failed, within=15))["attempts"] == 6
    assert await texts(sms_sink, phone) == []


async def test_an_expired_push_subscription_is_removed_and_its_push_bounced(
    notify: Notify, push_sink: httpx.AsyncClient, send: Send
) -> None:
    user = await customer(notify, send)
    await prefer(notify, send, user, push=True)
    subscription = await subscribe(notify, push_sink, user)
    await push_sink.delete(f"/api/subscriptions/{subscription['id']}")  # the browser unsubscribed
    order = confirmed(user)
    await send("order.exchange", "order.confirmed", order)

    push = (await deliveries(notify, order, 2))["push"]
    assert (push["status"], push["last_error"]) == ("BOUNCED", "subscription expired (410)")
    listed = await notify.http.get("/api/notifications/push/subscriptions", headers=headers(user))
    assert listed.json()["items"] == []


async def test_push_subscriptions_are_the_callers_own_and_validated(
    notify: Notify, push_sink: httpx.AsyncClient
) -> None:
    alice, bob = {"userId": uuid.uuid4()}, {"userId": uuid.uuid4()}
    subscription = await subscribe(notify, push_sink, alice)
    path = f"/api/notifications/push/subscriptions/{subscription['registered']['id']}"
    assert (await notify.http.delete(path, headers=headers(bob))).status_code == 404
    assert (await notify.http.delete(path, headers=headers(alice))).status_code == 204
    bad = {
        "endpoint": subscription["endpoint"],
        "keys": {"p256dh": "AAAA", "auth": subscription["keys"]["auth"]},
    }
    refused = await notify.http.post(
        "/api/notifications/push/subscriptions", json=bad, headers=headers(alice)
    )
    assert refused.status_code == 400
    [detail] = refused.json()["details"]
    assert detail["field"] == "keys" and detail["message"].startswith("keys.p256dh: must be an uncompressed")
    key = (await notify.http.get("/api/notifications/push/key", headers=headers(alice))).json()
    assert len(key["applicationServerKey"]) == 87  # 65 bytes, base64url without padding


async def _report(notify: Notify, notification_id: object, sid: str, status: str, valid: bool = True) -> int:
    url = f"{settings.load('notify').public_url}/api/notifications/sms/status?id={notification_id}"
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": twilio.DEV_ACCOUNT_SID}
    signature = twilio.signature(twilio.DEV_AUTH_TOKEN if valid else "guess", url, form.items())
    response = await notify.http.post(
        f"/api/notifications/sms/status?id={notification_id}",
        data=form,
        headers={"X-Twilio-Signature": signature},
    )
    return response.status_code


async def test_sms_delivery_reports_count_only_when_signed_and_only_move_forward(
    notify: Notify, sms_sink: httpx.AsyncClient, send: Send
) -> None:
    _, order = await sms_order(notify, send, sms_sink)
    sms = (await deliveries(notify, order, 2))["sms"]

    async def status() -> str:
        return str(await notify.db.fetchval("SELECT status FROM notifications WHERE id = $1", sms["id"]))

    assert await _report(notify, sms["id"], sms["provider_id"], "delivered", valid=False) == 403
    assert await status() == "SENT"
    assert await _report(notify, sms["id"], "SM" + "0" * 32, "delivered") == 204  # not this message's
    assert await status() == "SENT"
    assert await _report(notify, sms["id"], sms["provider_id"], "delivered") == 204
    assert await status() == "DELIVERED"
    assert await _report(notify, sms["id"], sms["provider_id"], "sent") == 204  # late and out of order
    assert await status() == "DELIVERED"
