"""The sandbox's state, shared by its gateways: sessions by (method, reference), the page tokens, and
the refund answers already given; plus the helpers every gateway's handlers use."""

from __future__ import annotations

import html
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from payment_gateways import config as gateway_config
from payment_gateways import momo, zalopay

VNPAY_PAGE = "/paymentv2/vpcpay.html"
MOMO_PAGE = "/v2/gateway/pay"
ZALOPAY_PAGE = "/openinapp"
MOMO_MIN, MOMO_MAX = 1_000, 50_000_000


class Refused(Exception):
    """The merchant's request is not one the real gateway would accept."""


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class Session:
    """One payment the sandbox knows, in the gateway's own units (VNPay: VND x100)."""

    method: str
    reference: str
    amount: int
    info: str
    return_url: str
    ipn_url: str
    created: str = ""  # VNPay's vnp_CreateDate, which querydr and refund must repeat
    expires_at: datetime | None = None
    momo_request: momo.CreateRequest | None = None
    zalopay_request: zalopay.CreateRequest | None = None
    status: Literal["pending", "paid", "failed"] = "pending"
    transaction_no: int = 0
    paid_at: datetime | None = None
    refunded: int = 0


class Gateways:
    """The sandbox's state: sessions by (method, reference), and the tokens of the MoMo/ZaloPay pages."""

    def __init__(self, config: gateway_config.GatewayConfig, base_url: str, vnpay_ipn_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.vnpay_ipn_url = vnpay_ipn_url
        self.sessions: dict[tuple[str, str], Session] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        self.refund_answers: dict[str, bytes] = {}  # "method:request id" -> the answer given
        self._numbers = itertools.count(int(datetime.now(UTC).timestamp()) % 10_000_000 * 100)

    def number(self) -> int:
        return next(self._numbers)

    def token_for(self, session: Session) -> str:
        token = secrets.token_urlsafe(16)
        self.tokens[token] = (session.method, session.reference)
        return token

    def by_token(self, token: str) -> Session:
        key = self.tokens.get(token)
        if key is None:
            raise Refused("unknown payment token")
        return self.sessions[key]

    def paid_by_transaction(self, method: str, transaction_no: int) -> Session | None:
        for session in self.sessions.values():
            if (
                session.method == method
                and session.status == "paid"
                and session.transaction_no == transaction_no
            ):
                return session
        return None


def gateways_of(request: Request) -> Gateways:
    return request.app.state.gateways  # type: ignore[no-any-return]


def page(session: Session, title: str) -> HTMLResponse:
    vnd = session.amount // 100 if session.method == "vnpay" else session.amount
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title} sandbox</title><h1>{title} sandbox</h1>"
        f"<p>{html.escape(session.info)}</p><p>Amount: {vnd:,} VND ({session.status})</p>"
        "<p>POST /sandbox/pay {paymentUrl, outcome: success|failed} completes it.</p>"
    )


def once(g: Gateways, key: str, act: Callable[[], msgspec.Struct]) -> Response:
    """A refund answered once per request id: a resent request gets the first answer, refunds nothing."""
    answer = g.refund_answers.get(key)
    if answer is None:
        answer = g.refund_answers[key] = msgspec.json.encode(act())
    return Response(answer, media_type="application/json")


def post_json(url: str, message: msgspec.Struct) -> httpx.Request:
    return httpx.Request(
        "POST", url, content=msgspec.json.encode(message), headers={"content-type": "application/json"}
    )


def token_page(request: Request, parameter: str, title: str) -> Response:
    """The page of a session found by the token in the query's `parameter` (MoMo's and ZaloPay's pages)."""
    try:
        return page(gateways_of(request).by_token(request.query_params.get(parameter, "")), title)
    except Refused as exc:
        return HTMLResponse(html.escape(str(exc)), 404)
