"""Mail over SMTP. The Message-ID is the notification's id, so every retry of one mail carries the same
one and a mail client shows a duplicate once.

Connections are kept for the next mail (one per send in flight, so at most the channel's concurrency):
a connection of its own per mail cost a TCP handshake, the greeting, EHLO and QUIT each time, several
times the mail itself for both ends (perf/README.md, "Notification dispatch"). A kept connection the
server has closed meanwhile (servers drop idle sessions after a few minutes; one idle longer than
`IDLE_SECONDS` is not reused) costs the mail a second try on a new one; any other failure closes the
connection, so a session left mid-transaction is never reused.
"""

from __future__ import annotations

import contextlib
import time
from email.header import Header
from email.message import Message
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from kit.settings import Settings
from svc_notify.channels import Retry, Undeliverable
from svc_notify.preferences import Channel
from svc_notify.queue import Claimed

SMTP_TIMEOUT = 10.0
IDLE_SECONDS = 30.0


class EmailSender:
    channel: Channel = "email"

    def __init__(self, config: Settings) -> None:
        self.config = config
        name, address = parseaddr(config.mail_from)
        self._from = formataddr((name, address), charset="utf-8")  # a name beyond ASCII is encoded
        self._domain = address.partition("@")[2] or "localhost"
        # Connections between two mails, the last used at the end, with when each went idle.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, row: Claimed) -> str | None:
        # The `compat32` Message, not `EmailMessage`: policy.default's header objects cost ~2 ms per mail
        # to build and read back here, a fifth of that as plain strings (perf/README.md).
        if "\r" in row.recipient or "\n" in row.recipient:
            raise Undeliverable("FAILED", "a recipient address with a line break")
        message = Message()
        message["From"] = self._from
        message["To"] = row.recipient
        # compat32 writes a header as given: a line break from a template's data would add headers.
        subject = " ".join((row.subject or "").splitlines())
        message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id = f"<{row.id}@{self._domain}>"
        message["MIME-Version"] = "1.0"
        message.set_payload(row.body, "utf-8")  # text/plain, base64 in transit
        try:
            if not await self._on_kept_connection(message):
                await self._on_new_connection(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [response.code for response in exc.recipients]
            if all(500 <= code < 600 for code in codes):  # a permanent refusal: the address is dead
                raise Undeliverable("BOUNCED", repr(exc)) from exc
            raise Retry(repr(exc)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Retry(repr(exc)) from exc
        return message_id

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp, _ in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await smtp.quit(timeout=1.0)
            smtp.close()

    async def _on_kept_connection(self, message: Message) -> bool:
        """Sent on the most recently used kept connection; False when there was none to use, or the
        server had closed it."""
        while self._idle:
            smtp, since = self._idle.pop()
            if smtp.is_connected and time.monotonic() - since < IDLE_SECONDS:
                break
            smtp.close()
        else:
            return False
        try:
            await self._send_on(smtp, message)
        except aiosmtplib.SMTPServerDisconnected:
            return False
        return True

    async def _on_new_connection(self, message: Message) -> None:
        smtp = aiosmtplib.SMTP(
            hostname=self.config.smtp_host, port=self.config.smtp_port, timeout=SMTP_TIMEOUT
        )
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            raise
        await self._send_on(smtp, message)

    async def _send_on(self, smtp: aiosmtplib.SMTP, message: Message) -> None:
        """Sent on `smtp`, kept for the next mail after; closed on any failure, so a session left
        mid-transaction is never reused."""
        try:
            await smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        self._idle.append((smtp, time.monotonic()))
