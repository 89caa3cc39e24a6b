"""The mail for `user.registered`: sent once, recorded, retried while SMTP is down, parked if poison."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import aiormq
import httpx
from pamqp import commands as spec
from prometheus_client import REGISTRY

from devsinks import mail
from kit import settings
from tests.support import eventually, serve
from tests.svc_notify.support import (
    QUEUE,
    Notify,
    Publish,
    encode,
    mails_to,
    notification,
    sent,
    user_registered,
)


def _handled() -> float:
    """Deliveries the consumer finished, duplicates skipped by the inbox included."""
    labels = {"queue": QUEUE, "outcome": "ok"}
    return REGISTRY.get_sample_value("shop_events_consumed_total", labels) or 0.0


async def test_registered_user_receives_the_verification_link(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish
) -> None:
    event = user_registered()
    await publish(encode(event))

    [message] = await eventually(lambda: mails_to(sink, event["email"]))
    assert message["subject"] == "Verify your email address"
    assert event["fullName"] in message["body"]
    match = re.search(r"https?://\S+/verify-email\?\S+", message["body"])
    assert match is not None
    link = urlsplit(match.group())
    assert match.group().startswith(settings.load("notify").public_url)
    assert parse_qs(link.query) == {"token": [event["verificationToken"]], "email": [event["email"]]}


async def test_delivery_is_recorded_sent_without_the_token(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish
) -> None:
    event = user_registered()
    await publish(encode(event))

    row = await sent(notify, event)
    assert (row["user_id"], row["recipient"], row["channel"]) == (
        uuid.UUID(event["userId"]),
        event["email"],
        "email",
    )
    assert (row["template"], row["attempts"], row["last_error"]) == ("email-verification", 1, None)
    assert row["priority"] == 0  # ahead of any order mail waiting for the provider (svc_notify.queue)
    assert row["sent_at"] is not None
    assert "/verify-email?token=REDACTED" in row["body"]
    assert event["verificationToken"] not in row["body"]


async def test_an_event_delivered_twice_sends_one_mail(
    notify: Notify, sink: httpx.AsyncClient, publish: Publish
) -> None:
    event = user_registered()
    before = _handled()
    await publish(encode(event))
    await publish(encode(event))

    async def both_handled() -> bool:
        return _handled() >= before + 2

    await eventually(both_handled)
    # Sent once (the send follows the handling, woken by its NOTIFY), then the sink holds that one mail.
    assert (await sent(notify, event))["attempts"] == 1
    assert len(await mails_to(sink, event["email"])) == 1


async def test_mail_is_retried_until_the_smtp_server_is_back(notify: Notify, publish: Publish) -> None:
    event = user_registered()
    await publish(encode(event))  # no sink is listening

    async def failed_once() -> bool:
        row = await notification(notify, event)
        return row is not None and row["last_error"] is not None and row["status"] in ("QUEUED", "SENDING")

    await eventually(failed_once)
    async with serve(mail.app) as sink:
        # Retries come after 0.2, 0.4, 0.8 ... s here (QUICK_RETRIES).
        [message] = await eventually(lambda: mails_to(sink, event["email"]), within=8.0)
    assert event["verificationToken"] in message["body"]
    row = await sent(notify, event)
    assert row["attempts"] >= 2
    assert row["last_error"].startswith("SMTPConnectError")


async def test_an_event_that_is_not_json_is_parked_in_the_dead_letter_queue(
    notify: Notify, publish: Publish, broker: aiormq.abc.AbstractConnection
) -> None:
    poison = f"not json {uuid.uuid4()}".encode()
    await publish(poison)

    channel = await broker.channel()

    async def parked() -> bool:
        while True:
            message = await channel.basic_get(f"{QUEUE}.dlq", no_ack=True)
            if isinstance(message.delivery, spec.Basic.GetEmpty):
                return False
            if message.body == poison:
                return True

    await eventually(parked)
    await channel.close()
