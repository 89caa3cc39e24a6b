"""Twilio's Programmable Messaging API as svc_notify and the dev SMS sink both speak it.

- Send: `POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth with the Account SID
  and Auth Token, a form body `To`, `From`, `Body`, `StatusCallback`; 201 with the message resource
  (`sid`, `status`, ...), or an error `{code, message, more_info, status}`.
- Delivery reports: Twilio POSTs a form (`MessageSid`, `MessageStatus`, `ErrorCode`, ...) to the
  `StatusCallback` URL, signed in `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the Auth Token,
  over the full URL followed by each POST parameter's name and value, sorted by name.

Configuration, shared by both processes (one signs what the other verifies):

    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM (a number in E.164 or a Messaging Service SID),
    TWILIO_API_URL (https://api.twilio.com in production)

In dev and test they default to the dev SMS sink (`devsinks.sms`) and dev-only credentials; elsewhere the
SID, token and sender must be set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from kit.settings import Env, OwnSettings, Secret

PRODUCTION_API = "https://api.twilio.com"
# Dev-only credentials shared by svc_notify and the dev sink; worthless anywhere else.
DEV_ACCOUNT_SID = "AC" + "de" * 16
DEV_AUTH_TOKEN = "dev-only-twilio-auth-token-0123456789"
DEV_FROM = "+15005550006"

# Twilio's MessageStatus values and what each means for our notification.
DELIVERED = {"delivered", "read"}
BOUNCED = {"undelivered"}
FAILED = {"failed", "canceled"}
# Twilio error codes that say the recipient cannot get SMS at all (unsubscribed, landline, blocked).
UNREACHABLE_CODES = {21610, 21612, 21614, 30003, 30005, 30006}


@dataclass(frozen=True, slots=True)
class TwilioConfig(OwnSettings):
    """Part of svc_notify's own settings, and the dev SMS sink's."""

    account_sid: str
    auth_token: Secret
    sender: str
    api_url: str

    @property
    def messages_url(self) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    @classmethod
    def read(cls, env: Env) -> TwilioConfig:
        required = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")
        if not env.is_dev and (missing := [name for name in required if not env.text(name)]):
            raise ValueError(f"Twilio credentials must be set outside dev and test: {', '.join(missing)}")
        default_api = env.service_url("smssink") if env.is_dev else PRODUCTION_API
        return cls(
            account_sid=env.text("TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID),
            auth_token=env.secret("TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN),
            sender=env.text("TWILIO_FROM", DEV_FROM),
            api_url=env.text("TWILIO_API_URL", default_api).rstrip("/"),
        )


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The `X-Twilio-Signature` of a POST of `params` to `url`."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_by(auth_token: str, url: str, params: Iterable[tuple[str, str]], given: str) -> bool:
    """Whether `given` is the signature of this request, compared in constant time."""
    return hmac.compare_digest(signature(auth_token, url, params).encode(), given.strip().encode())
