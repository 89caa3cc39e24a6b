"""The dev mail sink (CONTRACT.md section 7): accepts any mail over SMTP and lists it over HTTP.

One process, one event loop: the HTTP app's lifespan starts the SMTP server on the running loop and
closes it at shutdown. Messages live in memory only, the newest `CAPACITY`. Dev only: no auth, no TLS.

    python -m devsinks.mail     # SMTP on SMTP_PORT (1025), HTTP on MAILSINK_PORT (8025)
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit import logs, settings
from kit.http import JSON, Model

CAPACITY = 10_000


class Mail(Model):
    to: str
    subject: str
    body: str
    received_at: datetime


def _text_of(raw: bytes) -> tuple[str, str]:
    """(subject, text/plain body) of a raw message, transfer encodings and charsets decoded."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    part = message.get_body(preferencelist=("plain",))
    body = part.get_content() if isinstance(part, EmailMessage) else ""
    # SMTP carries CRLF line ends; readers of the listing expect the text as it was written.
    return str(message.get("subject", "")), body.replace("\r\n", "\n")


class Mailbox:
    """The aiosmtpd handler: keeps one entry per envelope recipient, newest first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._mails: deque[Mail] = deque(maxlen=capacity)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        subject, body = _text_of(raw)
        now = datetime.now(UTC)
        # Added on the left, so the newest comes first and a full deque drops the oldest, on the right.
        self._mails.extendleft(
            Mail(to=to, subject=subject, body=body, received_at=now) for to in envelope.rcpt_tos
        )
        return "250 Message accepted for delivery"

    def messages(self, to: str | None = None) -> list[Mail]:
        if to is None:
            return list(self._mails)
        wanted = to.strip().casefold()
        return [mail for mail in self._mails if mail.to.casefold() == wanted]

    def clear(self) -> None:
        self._mails.clear()


def _mailbox(request: Request) -> Mailbox:
    return request.app.state.mailbox  # type: ignore[no-any-return]


async def list_messages(request: Request) -> Response:
    return JSON(_mailbox(request).messages(request.query_params.get("to")))


async def clear_messages(request: Request) -> Response:
    _mailbox(request).clear()
    return Response(status_code=204)


async def live(request: Request) -> Response:
    return JSON({"status": "ok"})


def make_app(config: settings.Settings | None = None) -> Starlette:
    """The sink's app; `config` defaults to the environment's `mailsink` settings."""
    config = config or settings.load("mailsink")
    logs.setup("mailsink", config.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.mailbox = mailbox = Mailbox()
        loop = asyncio.get_running_loop()
        sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

        def session() -> SMTP:
            smtp = SMTP(mailbox, hostname="mailsink", enable_SMTPUTF8=True, loop=loop)
            sessions.add(smtp)
            return smtp

        server = await loop.create_server(session, host=config.host, port=config.smtp_port)
        try:
            yield
        finally:
            server.close()
            # Hang up on clients that keep their connection between mails, as a stopped server does:
            # otherwise they would go on delivering into this mailbox, which no one reads any more.
            for smtp in list(sessions):
                if smtp.transport is not None:
                    smtp.transport.close()
            await server.wait_closed()

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/api/messages", list_messages, methods=["GET"]),
            Route("/api/messages", clear_messages, methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.mail:app", "mailsink")
