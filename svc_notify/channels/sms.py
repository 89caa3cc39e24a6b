"""SMS through Twilio's Messages API (svc_notify.twilio), with a delivery report asked for every message.

The report comes back to `{PUBLIC_URL}/api/notifications/sms/status?id=<notification id>`: the id
ties it to our row even before the row holds Twilio's `sid`, and Twilio signs the URL with it.
"""

from __future__ import annotations

import httpx

from svc_notify.channels import Retry, Undeliverable, retry_after
from svc_notify.preferences import Channel
from svc_notify.queue import Claimed
from svc_notify.twilio import UNREACHABLE_CODES, TwilioConfig

TIMEOUT = httpx.Timeout(10.0, connect=3.0)
STATUS_PATH = "/api/notifications/sms/status"


def status_callback(public_url: str, notification_id: object) -> str:
    return f"{public_url.rstrip('/')}{STATUS_PATH}?id={notification_id}"


class SmsSender:
    channel: Channel = "sms"

    def __init__(self, twilio: TwilioConfig, public_url: str) -> None:
        self.twilio = twilio
        self.public_url = public_url
        self._client = httpx.AsyncClient(
            auth=(twilio.account_sid, twilio.auth_token.reveal()), timeout=TIMEOUT
        )

    async def send(self, row: Claimed) -> str | None:
        form = {
            "To": row.recipient,
            "Body": row.body,
            "StatusCallback": status_callback(self.public_url, row.id),
            # A Messaging Service SID (MG...) sends from its pool of numbers; anything else is a number.
            "MessagingServiceSid" if self.twilio.sender.startswith("MG") else "From": self.twilio.sender,
        }
        try:
            response = await self._client.post(self.twilio.messages_url, data=form)
        except httpx.HTTPError as exc:
            raise Retry(repr(exc)) from exc
        if response.status_code == 201:
            sid: str = response.json()["sid"]
            return sid
        error = f"Twilio {response.status_code}: {response.text[:500]}"
        if response.status_code == 429 or response.status_code >= 500:
            raise Retry(error, retry_after(response.headers.get("retry-after")))
        if response.status_code in (401, 403):
            raise Retry(error)  # our credentials: the message is fine, an operator fixes the account
        code = _error_code(response)
        raise Undeliverable("BOUNCED" if code in UNREACHABLE_CODES else "FAILED", error)

    async def close(self) -> None:
        await self._client.aclose()


def _error_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    return code if isinstance(code, int) else None
