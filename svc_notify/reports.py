"""Delivery reports: Twilio's status callback for each SMS, verified like a payment IPN.

Twilio POSTs a form to the `StatusCallback` URL we gave it (`?id=<notification id>`) and signs it with
our Auth Token (svc_notify.twilio); the URL it signed is the public one, so the check rebuilds it from
`PUBLIC_URL`, which must be the address Twilio calls. A report without a valid signature is a 403 and
changes nothing; a repeated or out-of-order one changes nothing either (statuses only move forward).
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import deps
from kit.errors import Forbidden, invalid
from kit.http import MAX_JSON_BODY
from kit.openapi import doc
from svc_notify import queue, twilio
from svc_notify.channels.sms import STATUS_PATH
from svc_notify.context import CONTEXT


def _status_of(twilio_status: str) -> str:
    if twilio_status in twilio.DELIVERED:
        return "DELIVERED"
    if twilio_status in twilio.BOUNCED:
        return "BOUNCED"
    if twilio_status in twilio.FAILED:
        return "FAILED"
    return "SENT"  # queued, accepted, sending, sent: the provider has it


@doc("Twilio's status callback for an SMS (signed with X-Twilio-Signature)", status=204, errors=(400, 403))
async def sms_status(request: Request) -> Response:
    d = deps(request)
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise invalid("body", "body: too large for a status callback")
    params = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    url = f"{d.settings.public_url.rstrip('/')}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    config = CONTEXT.of(d).twilio
    given = request.headers.get("x-twilio-signature", "")
    if not twilio.signed_by(config.auth_token.reveal(), url, params, given):
        raise Forbidden("The status callback's signature does not match")
    form = dict(params)
    try:
        notification_id = uuid.UUID(request.query_params.get("id", ""))
    except ValueError:
        raise invalid("id", "id: must be the notification's id") from None
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        raise invalid("MessageStatus", "MessageSid and MessageStatus are required")
    code = form.get("ErrorCode")
    error = f"Twilio {status} (error {code})" if code else None
    async with d.db.acquire() as conn:
        await queue.report(conn, notification_id, "sms", sid, _status_of(status), error)
    return Response(status_code=204)


routes = [Route(STATUS_PATH, sms_status, methods=["POST"])]
