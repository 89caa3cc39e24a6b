"""The email channel against an SMTP server of the test's own: it keeps its connections for the next mail,
gets over one the server closed, and never lets a line break in a mail's data make a header."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from devsinks.mail import Mailbox
from kit import settings
from svc_notify.channels import Undeliverable
from svc_notify.channels.email import EmailSender
from svc_notify.queue import Claimed
from tests.processes import free_port

pytestmark = pytest.mark.offline


class Server(Mailbox):
    """A mail server on a port of its own: the mails, and the client port each came over."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.peers: list[object] = []
        self.sessions: list[SMTP] = []
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)

    def _session(self) -> SMTP:
        self.sessions.append(SMTP(self, hostname="test"))
        return self.sessions[-1]

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(self._session, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stops listening and hangs up on every client, as a restarted server does."""
        assert self._server is not None
        self._server.close()
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    mail_server = Server()
    await mail_server.start()
    yield mail_server
    await mail_server.stop()


def mail_to(recipient: str, subject: str = "Chào bạn") -> Claimed:
    return Claimed(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), recipient, "welcome", subject, "Xin chào", 1)


async def test_mails_one_after_another_share_one_connection(server: Server) -> None:
    sender = EmailSender(settings.load("notify", {"SMTP_PORT": str(server.port)}))
    try:
        for n in range(3):
            assert await sender.send(mail_to(f"buyer{n}@shop.test"))
    finally:
        await sender.close()
    assert [mail.to for mail in server.messages()] == [f"buyer{n}@shop.test" for n in (2, 1, 0)]
    assert (server.messages()[0].subject, server.messages()[0].body) == ("Chào bạn", "Xin chào")
    assert len(set(server.peers)) == 1  # one client port: one connection for the three


async def test_a_connection_the_server_hung_up_is_replaced_without_losing_the_mail(server: Server) -> None:
    sender = EmailSender(settings.load("notify", {"SMTP_PORT": str(server.port)}))
    try:
        await sender.send(mail_to("first@shop.test"))
        await server.stop()
        await server.start()  # the same port, the kept connection closed
        await sender.send(mail_to("second@shop.test"))
    finally:
        await sender.close()
    assert [mail.to for mail in server.messages()] == ["second@shop.test", "first@shop.test"]
    assert len(set(server.peers)) == 2


async def test_a_line_break_in_the_subject_adds_no_header_and_in_an_address_sends_nothing(
    server: Server,
) -> None:
    sender = EmailSender(settings.load("notify", {"SMTP_PORT": str(server.port)}))
    try:
        await sender.send(mail_to("buyer@shop.test", "Hi Eve\r\nBcc: victim@else.where"))
        with pytest.raises(Undeliverable):
            await sender.send(mail_to("buyer@shop.test\r\nBcc: victim@else.where"))
    finally:
        await sender.close()
    [mail] = server.messages()
    assert (mail.to, mail.subject) == ("buyer@shop.test", "Hi Eve Bcc: victim@else.where")
