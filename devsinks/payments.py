"""The dev payment gateway sandbox (CONTRACT.md section 7): VNPay, MoMo and ZaloPay as a merchant sees them.

    python -m devsinks.payments     # HTTP on SANDBOX_PORT (5009)

It speaks each gateway's real protocol (one module each in `devsinks.sandbox`) with the very modules
svc_payment signs with (`payment_gateways`), checking the merchant's signatures and signing its own
notifications:

- VNPay: the payment page `GET /paymentv2/vpcpay.html?<signed vnp_ params>`, and querydr and refund at
  `POST /merchant_webapi/api/transaction`.
- MoMo: `POST /v2/gateway/api/{create,query,refund}`; the page `GET /v2/gateway/pay?t=<token>`.
- ZaloPay: `POST /v2/{create,query,refund}`; the page `GET /openinapp?order=<token>`.
- `POST /sandbox/pay {paymentUrl, outcome: "success"|"failed", notify?: true}` plays the buyer: it
  follows `paymentUrl` one hop (the merchant's 302 to a gateway page), settles that session and sends
  the IPN as the gateway would (VNPay GET, MoMo POST JSON, ZaloPay POST {data, mac, type} and only for
  a paid order). `notify: false` loses the IPN on purpose, as a network would; a later query still
  tells the truth. The answer carries the gateway's signed return URL for the buyer's browser.

Sessions live in memory only. Dev only: no TLS, no auth beyond the merchants' signatures.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devsinks.sandbox import momo, vnpay, zalopay
from devsinks.sandbox.sessions import (
    MOMO_PAGE,
    VNPAY_PAGE,
    ZALOPAY_PAGE,
    Gateways,
    Refused,
    Session,
    gateways_of,
)
from kit import logs, settings
from kit.errors import ShopError
from kit.http import JSON, Model, body_of
from payment_gateways import config as gateway_config


@dataclass(frozen=True, slots=True)
class SandboxConfig(settings.OwnSettings):
    """The merchant credentials svc_payment signs with, and where VNPay's IPNs go (a merchant sets it in
    VNPay's portal: `SANDBOX_VNPAY_IPN_URL`, the shop's public route by default)."""

    gateways: gateway_config.GatewayConfig
    vnpay_ipn: str

    @classmethod
    def read(cls, env: settings.Env) -> SandboxConfig:
        ipn = env.text("SANDBOX_VNPAY_IPN_URL", f"{env.public_url}/api/payments/vnpay/ipn")
        return cls(gateway_config.read(env), ipn)


# ---- the buyer -------------------------------------------------------------------------------------


class PayRequest(Model):
    payment_url: str
    outcome: Literal["success", "failed"]
    notify: bool = True  # false: the IPN is lost on the way (the gateway still answers queries)


class PayResult(Model):
    method: str
    reference: str
    outcome: str
    transaction_id: str
    notified: bool
    ipn_status: int | None
    ipn_response: str
    return_url: str


def _settle(g: Gateways, session: Session, outcome: str) -> datetime:
    if session.status != "pending":
        raise Refused(f"This payment is already {session.status}")
    now = datetime.now(UTC)
    if session.expires_at is not None and session.expires_at <= now:
        raise Refused("This payment has expired")
    session.status = "paid" if outcome == "success" else "failed"
    session.transaction_no, session.paid_at = g.number(), now
    return now


async def _gateway_page(http: httpx.AsyncClient, payment_url: str) -> str:
    """The gateway page `payment_url` leads to: itself, or where the merchant's redirect points."""
    if urlsplit(payment_url).path in (VNPAY_PAGE, MOMO_PAGE, ZALOPAY_PAGE):
        return payment_url
    try:
        response = await http.get(payment_url, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise Refused(f"paymentUrl unreachable: {exc!r}") from None
    location = response.headers.get("location")
    if response.status_code not in (302, 303, 307) or not location:
        raise Refused(f"paymentUrl answered {response.status_code}, not a redirect: {response.text[:300]}")
    return str(location)


async def pay(request: Request) -> Response:
    g = gateways_of(request)
    http: httpx.AsyncClient = request.app.state.http
    body = await body_of(request, PayRequest)
    page = urlsplit(await _gateway_page(http, body.payment_url))
    params = dict(parse_qsl(page.query, keep_blank_values=True))
    notice: Callable[[Gateways, Session], tuple[httpx.Request | None, str]]
    if page.path == VNPAY_PAGE:
        session, notice = vnpay.session_of(g, params), vnpay.notice
    elif page.path == MOMO_PAGE:
        session, notice = g.by_token(params.get("t", "")), momo.notice
    elif page.path == ZALOPAY_PAGE:
        session, notice = g.by_token(params.get("order", "")), zalopay.notice
    else:
        raise Refused(f"{page.path} is not a gateway page of this sandbox")
    _settle(g, session, body.outcome)
    ipn, return_url = notice(g, session)
    status, answer = None, ""
    if ipn is not None and body.notify:
        try:
            response = await http.send(ipn)
            status, answer = response.status_code, response.text
        except httpx.HTTPError as exc:
            answer = f"unreachable: {exc!r}"
    return JSON(
        PayResult(
            method=session.method,
            reference=session.reference,
            outcome=body.outcome,
            transaction_id=str(session.transaction_no),
            notified=status is not None,
            ipn_status=status,
            ipn_response=answer,
            return_url=return_url,
        )
    )


async def live(request: Request) -> Response:
    return JSON({"status": "ok"})


async def _refused(request: Request, exc: Exception) -> Response:
    return JSON({"error": "Refused", "message": str(exc), "details": []}, 409)


async def _shop_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShopError)
    return JSON(exc.body(), exc.status)


async def _malformed(request: Request, exc: Exception) -> Response:
    return JSON({"error": "ValidationError", "message": f"Malformed request: {exc}", "details": []}, 400)


def make_app(
    config: settings.Settings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The sandbox's app; `transport` replaces the network for the IPNs it sends (tests)."""
    config = config or settings.load("sandbox", own=SandboxConfig)
    logs.setup("sandbox", config.log_level)
    own = SandboxConfig.of(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.gateways = Gateways(own.gateways, config.url, own.vnpay_ipn)
        async with httpx.AsyncClient(transport=transport, timeout=15) as app.state.http:
            yield

    return Starlette(
        routes=[
            Route("/health/live", live),
            *vnpay.routes,
            *momo.routes,
            *zalopay.routes,
            Route("/sandbox/pay", pay, methods=["POST"]),
        ],
        exception_handlers={Refused: _refused, msgspec.MsgspecError: _malformed, ShopError: _shop_error},
        lifespan=lifespan,
    )


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.payments:app", "sandbox")
