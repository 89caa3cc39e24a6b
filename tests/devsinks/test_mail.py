"""The dev mail sink: what arrives over SMTP is listed over HTTP, decoded, newest first, per recipient."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest

from devsinks import mail
from kit import settings
from tests.support import serve

pytestmark = pytest.mark.offline

CONFIG = settings.load("mailsink")


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(mail.app) as client:
        yield client


def _address() -> str:
    return f"{uuid.uuid4().hex}@example.com"


async def _send(to: list[str], subject: str, text: str, html: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = "Shop <no-reply@shop.local>"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    await aiosmtplib.send(message, hostname=CONFIG.smtp_host, port=CONFIG.smtp_port)


async def test_mail_is_listed_with_its_plain_text_body_decoded(sink: httpx.AsyncClient) -> None:
    to = _address()
    text = "Xin chào Nguyễn Văn An, open https://shop.local/verify-email?token=abc&email=a%40b\n"
    await _send([to], "Xác minh địa chỉ email", text, html="<p>Xin chào</p>")

    response = await sink.get("/api/messages", params={"to": to})
    assert response.status_code == 200
    [message] = response.json()
    assert message.keys() == {"to", "subject", "body", "receivedAt"}
    assert (message["to"], message["subject"], message["body"]) == (to, "Xác minh địa chỉ email", text)
    assert datetime.fromisoformat(message["receivedAt"]).tzinfo is not None


async def test_messages_are_filtered_by_recipient_newest_first(sink: httpx.AsyncClient) -> None:
    alice, bob = _address(), _address()
    await _send([alice], "first", "1")
    await _send([bob], "second", "2")
    await _send([alice, bob], "third", "3")

    for_alice = (await sink.get("/api/messages", params={"to": alice.upper()})).json()
    assert [m["subject"] for m in for_alice] == ["third", "first"]
    everything = (await sink.get("/api/messages")).json()
    assert [m["subject"] for m in everything] == ["third", "third", "second", "first"]
    assert {m["to"] for m in everything[:2]} == {alice, bob}


async def test_delete_empties_the_mailbox(sink: httpx.AsyncClient) -> None:
    await _send([_address()], "gone soon", "bye")
    assert (await sink.delete("/api/messages")).status_code == 204
    assert (await sink.get("/api/messages")).json() == []


async def test_sink_reports_live(sink: httpx.AsyncClient) -> None:
    response = await sink.get("/health/live")
    assert response.json() == {"status": "ok"}
