"""The dev SMS sink: Twilio's Messages API as svc_notify uses it, and a listing of what it was sent.

    python -m devsinks.sms     # HTTP on SMSSINK_PORT (8026)

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` checks HTTP basic auth against the configured
  Account SID and Auth Token (svc_notify.twilio), takes `To` (E.164), `From` or `MessagingServiceSid`,
  `Body` and `StatusCallback`, and answers 201 with the message resource or Twilio's error shape. It then
  reports `sent` and `delivered` to the `StatusCallback`, signed with `X-Twilio-Signature` as Twilio does.
- `GET /api/messages?to=+84...` lists what was accepted, newest first, with each text's GSM-7/UCS-2
  segments and the statuses reported; `DELETE /api/messages` forgets everything.
- `POST /api/faults {to, failures, status?, outcome?}` makes the next `failures` sends to `to` answer
  `status` (503) and the accepted one end with `outcome` (`delivered`, `undelivered` or `failed`).

Messages live in memory only. Dev only: nothing is sent to a phone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit import logs, settings
from kit.http import JSON, Model, body_of
from svc_notify import segments, twilio

log = logging.getLogger(__name__)
CAPACITY = 10_000
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
Outcome = Literal["delivered", "undelivered", "failed"]
# Twilio's error codes for the outcomes a fault can end with.
OUTCOME_CODES = {"undelivered": "30003", "failed": "30008"}


class Sms(Model):
    sid: str
    to: str
    sender: str
    body: str
    encoding: str
    segments: int
    status_callback: str | None
    statuses: list[str]
    received_at: datetime


class Fault(Model):
    to: str
    failures: int = 0
    status: int = 503
    outcome: Outcome = "delivered"


@dataclass
class Phone:
    """What the sink holds: the messages, the faults still to play, the callbacks in flight."""

    config: twilio.TwilioConfig
    messages: deque[Sms] = field(default_factory=lambda: deque(maxlen=CAPACITY))
    faults: dict[str, Fault] = field(default_factory=dict)
    reports: set[asyncio.Task[None]] = field(default_factory=set)


def _phone(request: Request) -> Phone:
    return request.app.state.phone  # type: ignore[no-any-return]


def _error(status: int, code: int, message: str) -> Response:
    more = f"https://www.twilio.com/docs/errors/{code}"
    return JSON({"code": code, "message": message, "more_info": more, "status": status}, status)


def _authenticated(request: Request, config: twilio.TwilioConfig) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    try:
        sid, _, token = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (
        scheme.lower() == "basic"
        and sid == config.account_sid == request.path_params["sid"]
        and hmac.compare_digest(token.encode(), config.auth_token.reveal().encode())
    )


async def _report(phone: Phone, sms: Sms, outcome: Outcome) -> None:
    """Tell the StatusCallback `sent`, then the outcome, as Twilio would, signed."""
    assert sms.status_callback is not None
    async with httpx.AsyncClient(timeout=5) as client:
        for status in ("sent", outcome):
            params = {
                "MessageSid": sms.sid,
                "SmsSid": sms.sid,
                "AccountSid": phone.config.account_sid,
                "From": sms.sender,
                "To": sms.to,
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            if status in OUTCOME_CODES:
                params["ErrorCode"] = OUTCOME_CODES[status]
            token = phone.config.auth_token.reveal()
            signature = twilio.signature(token, sms.status_callback, params.items())
            try:
                response = await client.post(
                    sms.status_callback, data=params, headers={"X-Twilio-Signature": signature}
                )
                sms.statuses.append(f"{status}:{response.status_code}")
            except httpx.HTTPError as exc:
                log.warning("status callback failed", extra={"error": repr(exc), "sid": sms.sid})
                sms.statuses.append(f"{status}:unreachable")


async def send_message(request: Request) -> Response:
    phone = _phone(request)
    if not _authenticated(request, phone.config):
        return _error(401, 20003, "Authenticate")
    form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
    to, body = form.get("To", ""), form.get("Body", "")
    sender = form.get("From") or form.get("MessagingServiceSid") or ""
    if not E164.match(to):
        return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not sender:
        return _error(
            400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."
        )
    if not body:
        return _error(400, 21602, "Message body is required.")
    fault = phone.faults.get(to)
    if fault is not None and fault.failures > 0:
        fault.failures -= 1
        return _error(fault.status, 20500, "An internal server error has occurred")
    counted = segments.count(body)
    sms = Sms(
        sid="SM" + uuid.uuid4().hex,
        to=to,
        sender=sender,
        body=body,
        encoding=counted.encoding,
        segments=counted.segments,
        status_callback=form.get("StatusCallback") or None,
        statuses=[],
        received_at=datetime.now(UTC),
    )
    phone.messages.appendleft(sms)
    if sms.status_callback:
        task = asyncio.create_task(_report(phone, sms, fault.outcome if fault else "delivered"))
        phone.reports.add(task)
        task.add_done_callback(phone.reports.discard)
    resource = {
        "sid": sms.sid,
        "account_sid": phone.config.account_sid,
        "to": to,
        "from": sender,
        "body": body,
        "status": "queued",
        "num_segments": str(counted.segments),
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": sms.received_at.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{phone.config.account_sid}/Messages/{sms.sid}.json",
    }
    return JSON(resource, 201)


async def list_messages(request: Request) -> Response:
    to = request.query_params.get("to")
    messages = _phone(request).messages
    return JSON([sms for sms in messages if to is None or sms.to == to.strip()])


async def clear_messages(request: Request) -> Response:
    _phone(request).messages.clear()
    return Response(status_code=204)


async def add_fault(request: Request) -> Response:
    fault = await body_of(request, Fault)
    _phone(request).faults[fault.to] = fault
    return JSON(fault, 201)


async def live(request: Request) -> Response:
    return JSON({"status": "ok"})


def make_app(config: settings.Settings | None = None) -> Starlette:
    """The sink's app; `config` defaults to the environment's `smssink` settings."""
    config = config or settings.load("smssink", own=twilio.TwilioConfig)
    logs.setup("smssink", config.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.phone = phone = Phone(twilio.TwilioConfig.of(config))
        try:
            yield
        finally:
            for task in phone.reports:
                task.cancel()
            await asyncio.gather(*phone.reports, return_exceptions=True)

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/2010-04-01/Accounts/{sid}/Messages.json", send_message, methods=["POST"]),
            Route("/api/messages", list_messages, methods=["GET"]),
            Route("/api/messages", clear_messages, methods=["DELETE"]),
            Route("/api/faults", add_fault, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.sms:app", "smssink")
