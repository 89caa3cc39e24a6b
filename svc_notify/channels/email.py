"""Mail over SMTP. The Message-ID is the notification's id, so every retry of one mail carries the same
one and a mail client shows a duplicate once."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from kit.settings import Settings
from svc_notify.channels import Retry, Undeliverable
from svc_notify.preferences import Channel
from svc_notify.queue import Claimed

SMTP_TIMEOUT = 10.0


class EmailSender:
    channel: Channel = "email"

    def __init__(self, config: Settings) -> None:
        self.config = config
        self._domain = parseaddr(config.mail_from)[1].partition("@")[2] or "localhost"

    async def send(self, row: Claimed) -> str | None:
        message = EmailMessage()
        message["From"] = self.config.mail_from
        message["To"] = row.recipient
        message["Subject"] = row.subject or ""
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id = f"<{row.id}@{self._domain}>"
        message.set_content(row.body)
        try:
            await aiosmtplib.send(
                message, hostname=self.config.smtp_host, port=self.config.smtp_port, timeout=SMTP_TIMEOUT
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [response.code for response in exc.recipients]
            if all(500 <= code < 600 for code in codes):  # a permanent refusal: the address is dead
                raise Undeliverable("BOUNCED", repr(exc)) from exc
            raise Retry(repr(exc)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Retry(repr(exc)) from exc
        return message_id

    async def close(self) -> None:
        """Nothing held: one SMTP connection per mail."""
