"""The dev payment gateway sandbox (CONTRACT.md section 7): VNPay, MoMo and ZaloPay as a merchant sees them.

    python -m devsinks.payments     # HTTP on SANDBOX_PORT (5009)

It speaks each gateway's real protocol with the very modules svc_payment signs with
(`svc_payment.gateways`), checking the merchant's signatures and signing its own notifications:

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
import html
import itertools
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from kit import logs, settings
from kit.errors import ShopError
from kit.http import JSON, Model, body_of
from svc_payment.gateways import config as gateway_config
from svc_payment.gateways import momo, vnpay, zalopay
from svc_payment.gateways.common import vietnam_time

T = TypeVar("T")

VNPAY_PAGE = "/paymentv2/vpcpay.html"
MOMO_PAGE = "/v2/gateway/pay"
ZALOPAY_PAGE = "/openinapp"
MOMO_MIN, MOMO_MAX = 1_000, 50_000_000


class Refused(Exception):
    """The merchant's request is not one the real gateway would accept."""


def _ms(at: datetime) -> int:
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

    # VNPay: the session exists once the buyer opens the signed URL.
    def vnpay_session(self, params: dict[str, str]) -> Session:
        c = self.config.vnpay
        if not vnpay.verify(c.hash_secret.reveal(), params) or params.get("vnp_TmnCode") != c.tmn_code:
            raise Refused("Invalid signature (vnp_SecureHash)")
        if params.get("vnp_Version") != vnpay.VERSION or params.get("vnp_Command") != "pay":
            raise Refused("Unsupported vnp_Version or vnp_Command")
        try:
            amount = int(params["vnp_Amount"])
            vnpay.parse_timestamp(params["vnp_CreateDate"])
            expires = params.get("vnp_ExpireDate")
            expires_at = vnpay.parse_timestamp(expires) if expires else None
            reference, return_url = params["vnp_TxnRef"], params["vnp_ReturnUrl"]
        except (KeyError, ValueError) as exc:
            raise Refused(f"Missing or malformed parameter: {exc}") from None
        if amount <= 0 or params.get("vnp_CurrCode") != "VND":
            raise Refused("Invalid amount or currency")
        session = self.sessions.get(("vnpay", reference))
        if session is None:
            session = self.sessions[("vnpay", reference)] = Session(
                "vnpay",
                reference,
                amount,
                params.get("vnp_OrderInfo", ""),
                return_url,
                self.vnpay_ipn_url,
                created=params["vnp_CreateDate"],
                expires_at=expires_at,
            )
        elif session.amount != amount:
            raise Refused("vnp_TxnRef already used with another amount")
        return session


def _gateways(request: Request) -> Gateways:
    return request.app.state.gateways  # type: ignore[no-any-return]


def _page(session: Session, title: str) -> HTMLResponse:
    vnd = session.amount // 100 if session.method == "vnpay" else session.amount
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{title} sandbox</title><h1>{title} sandbox</h1>"
        f"<p>{html.escape(session.info)}</p><p>Amount: {vnd:,} VND ({session.status})</p>"
        "<p>POST /sandbox/pay {paymentUrl, outcome: success|failed} completes it.</p>"
    )


# ---- VNPay -----------------------------------------------------------------------------------------


async def vnpay_page(request: Request) -> Response:
    try:
        session = _gateways(request).vnpay_session(dict(request.query_params))
    except Refused as exc:
        return HTMLResponse(f"<!doctype html><title>VNPay sandbox</title><p>{html.escape(str(exc))}", 400)
    return _page(session, "VNPay")


def _vnpay_query(g: Gateways, body: bytes) -> vnpay.QueryResponse:
    c = g.config.vnpay
    request = msgspec.json.decode(body, type=vnpay.QueryRequest, strict=False)
    answer = vnpay.QueryResponse(
        vnp_ResponseId=uuid.uuid4().hex, vnp_ResponseCode="00", vnp_TmnCode=c.tmn_code
    )
    session = g.sessions.get(("vnpay", request.vnp_TxnRef))
    if not request.verify(c.hash_secret.reveal()) or request.vnp_TmnCode != c.tmn_code:
        answer.vnp_ResponseCode = "97"
    elif session is None or session.created != request.vnp_TransactionDate:
        answer.vnp_ResponseCode = vnpay.NOT_FOUND
    else:
        answer.vnp_TxnRef, answer.vnp_Amount = session.reference, str(session.amount)
        answer.vnp_OrderInfo, answer.vnp_TransactionType = session.info, "01"
        answer.vnp_TransactionStatus = {"paid": "00", "failed": "02", "pending": "01"}[session.status]
        if session.status != "pending":
            answer.vnp_BankCode, answer.vnp_TransactionNo = "NCB", str(session.transaction_no)
            answer.vnp_PayDate = vnpay.timestamp(session.paid_at or datetime.now(UTC))
    answer.sign(c.hash_secret.reveal())
    return answer


def _vnpay_refund(g: Gateways, request: vnpay.RefundRequest) -> vnpay.RefundResponse:
    c = g.config.vnpay
    answer = vnpay.RefundResponse(
        vnp_ResponseId=uuid.uuid4().hex,
        vnp_ResponseCode="00",
        vnp_TmnCode=c.tmn_code,
        vnp_TxnRef=request.vnp_TxnRef,
        vnp_Amount=request.vnp_Amount,
        vnp_TransactionType=request.vnp_TransactionType,
        vnp_OrderInfo=request.vnp_OrderInfo,
    )
    session = g.sessions.get(("vnpay", request.vnp_TxnRef))
    if not request.verify(c.hash_secret.reveal()) or request.vnp_TmnCode != c.tmn_code:
        answer.vnp_ResponseCode = "97"
    elif session is None or session.created != request.vnp_TransactionDate:
        answer.vnp_ResponseCode = vnpay.NOT_FOUND
    elif session.status != "paid":
        answer.vnp_ResponseCode = "95"  # the transaction did not succeed at VNPay
    elif (
        request.vnp_TransactionType not in (vnpay.FULL_REFUND, vnpay.PARTIAL_REFUND)
        or not 0 < int(request.vnp_Amount) <= session.amount - session.refunded
    ):
        answer.vnp_ResponseCode = "02"  # more than is left to refund
    else:
        session.refunded += int(request.vnp_Amount)
        answer.vnp_TransactionNo, answer.vnp_TransactionStatus = str(g.number()), "05"
        answer.vnp_BankCode, answer.vnp_PayDate = "NCB", vnpay.timestamp(datetime.now(UTC))
    answer.sign(c.hash_secret.reveal())
    return answer


async def vnpay_transaction(request: Request) -> Response:
    g = _gateways(request)
    body = await request.body()
    command = msgspec.json.decode(body, type=vnpay.Command).vnp_Command
    if command == "querydr":
        return JSON(_vnpay_query(g, body))
    if command == "refund":
        refund = msgspec.json.decode(body, type=vnpay.RefundRequest, strict=False)
        return _once(g, f"vnpay:{refund.vnp_RequestId}", lambda: _vnpay_refund(g, refund))
    return JSON({"vnp_ResponseCode": "99", "vnp_Message": f"Unknown vnp_Command {command!r}"})


def _once(g: Gateways, key: str, act: Callable[[], msgspec.Struct]) -> Response:
    """A refund answered once per request id: a resent request gets the first answer, refunds nothing."""
    answer = g.refund_answers.get(key)
    if answer is None:
        answer = g.refund_answers[key] = msgspec.json.encode(act())
    return Response(answer, media_type="application/json")


# ---- MoMo ------------------------------------------------------------------------------------------


def _momo_keys(g: Gateways) -> tuple[str, str]:
    return g.config.momo.access_key, g.config.momo.secret_key.reveal()


async def momo_create(request: Request) -> Response:
    g = _gateways(request)
    access, secret = _momo_keys(g)
    create = msgspec.json.decode(await request.body(), type=momo.CreateRequest, strict=False)
    now = datetime.now(UTC)
    answer = momo.CreateResponse(
        partner_code=create.partner_code,
        request_id=create.request_id,
        order_id=create.order_id,
        amount=create.amount,
        response_time=_ms(now),
        message="Successful.",
        result_code=momo.SUCCESS,
    )
    session = g.sessions.get(("momo", create.order_id))
    if create.partner_code != g.config.momo.partner_code or not create.verify(access, secret):
        answer.result_code, answer.message = 13, "Merchant authentication failed."
    elif not MOMO_MIN <= create.amount <= MOMO_MAX:
        answer.result_code, answer.message = 22, "Amount out of range."
    elif session is not None and (
        session.momo_request is None or session.momo_request.request_id != create.request_id
    ):
        answer.result_code, answer.message = 41, "Duplicate orderId."
    else:
        if session is None:  # a repeated request id gets the same page back (idempotent)
            session = g.sessions[("momo", create.order_id)] = Session(
                "momo",
                create.order_id,
                create.amount,
                create.order_info,
                create.redirect_url,
                create.ipn_url,
                momo_request=create,
            )
        answer.pay_url = f"{g.base_url}{MOMO_PAGE}?t={g.token_for(session)}"
    answer.sign(access, secret)
    return JSON(answer)


async def momo_query(request: Request) -> Response:
    g = _gateways(request)
    query = msgspec.json.decode(await request.body(), type=momo.QueryRequest, strict=False)
    answer = momo.QueryResponse(
        order_id=query.order_id, result_code=momo.NOT_FOUND, response_time=_ms(datetime.now(UTC))
    )
    session = g.sessions.get(("momo", query.order_id))
    if not query.verify(*_momo_keys(g)):
        answer.result_code, answer.message = 13, "Merchant authentication failed."
    elif session is not None:
        answer.amount = session.amount
        answer.result_code = {"paid": momo.SUCCESS, "failed": momo.USER_DENIED, "pending": 1000}[
            session.status
        ]
        answer.trans_id = session.transaction_no
        answer.message = {
            "paid": "Successful.",
            "failed": "Transaction denied by user.",
            "pending": "Initiated.",
        }[session.status]
    return JSON(answer)


def _momo_refund(g: Gateways, refund: momo.RefundRequest) -> momo.RefundResponse:
    answer = momo.RefundResponse(order_id=refund.order_id, amount=refund.amount, result_code=momo.SUCCESS)
    session = g.paid_by_transaction("momo", refund.trans_id)
    if not refund.verify(*_momo_keys(g)):
        answer.result_code, answer.message = 13, "Merchant authentication failed."
    elif session is None:
        answer.result_code, answer.message = momo.NOT_FOUND, "Transaction not found."
    elif not 0 < refund.amount <= session.amount - session.refunded:
        answer.result_code, answer.message = 22, "Amount out of range."
    else:
        session.refunded += refund.amount
        answer.trans_id, answer.message = g.number(), "Successful."
    answer.response_time = _ms(datetime.now(UTC))
    return answer


async def momo_refund(request: Request) -> Response:
    g = _gateways(request)
    refund = msgspec.json.decode(await request.body(), type=momo.RefundRequest, strict=False)
    return _once(g, f"momo:{refund.request_id}", lambda: _momo_refund(g, refund))


async def momo_page(request: Request) -> Response:
    try:
        return _page(_gateways(request).by_token(request.query_params.get("t", "")), "MoMo")
    except Refused as exc:
        return HTMLResponse(html.escape(str(exc)), 404)


# ---- ZaloPay ---------------------------------------------------------------------------------------


async def zalopay_create(request: Request) -> Response:
    g = _gateways(request)
    c = g.config.zalopay
    create = msgspec.json.decode(await request.body(), type=zalopay.CreateRequest, strict=False)
    answer = zalopay.CreateResponse(return_code=zalopay.SUCCESS, return_message="Giao dịch thành công")
    session = g.sessions.get(("zalopay", create.app_trans_id))
    today = f"{vietnam_time(datetime.now(UTC)):%y%m%d}_"
    if create.app_id != c.app_id or not zalopay.mac_matches(c.key1.reveal(), create.mac_data(), create.mac):
        answer = zalopay.CreateResponse(
            return_code=zalopay.FAILED, sub_return_code=-402, sub_return_message="Unauthorized"
        )
    elif not create.app_trans_id.startswith(today) or create.amount <= 0:
        answer = zalopay.CreateResponse(
            return_code=zalopay.FAILED, sub_return_code=-401, sub_return_message="Illegal params"
        )
    elif session is not None and session.zalopay_request != create:
        answer = zalopay.CreateResponse(
            return_code=zalopay.FAILED, sub_return_code=-68, sub_return_message="Duplicate app_trans_id"
        )
    else:
        if session is None:
            seconds = create.expire_duration_seconds or 900
            session = g.sessions[("zalopay", create.app_trans_id)] = Session(
                "zalopay",
                create.app_trans_id,
                create.amount,
                create.description,
                json.loads(create.embed_data or "{}").get("redirecturl", ""),
                create.callback_url,
                expires_at=datetime.fromtimestamp(create.app_time / 1000 + seconds, UTC),
                zalopay_request=create,
            )
        token = g.token_for(session)
        answer.order_url, answer.zp_trans_token = f"{g.base_url}{ZALOPAY_PAGE}?order={token}", token
    return JSON(answer)


async def zalopay_query(request: Request) -> Response:
    g = _gateways(request)
    key1 = g.config.zalopay.key1.reveal()
    query = msgspec.json.decode(await request.body(), type=zalopay.QueryRequest, strict=False)
    session = g.sessions.get(("zalopay", query.app_trans_id))
    if query.app_id != g.config.zalopay.app_id or not zalopay.mac_matches(
        key1, query.mac_data(key1), query.mac
    ):
        return JSON(
            zalopay.QueryResponse(
                return_code=zalopay.FAILED, sub_return_code=-402, sub_return_message="Unauthorized"
            )
        )
    if session is None or session.status == "pending":
        return JSON(
            zalopay.QueryResponse(
                return_code=zalopay.PROCESSING, return_message="Giao dịch chưa được thanh toán"
            )
        )
    paid = session.status == "paid"
    return JSON(
        zalopay.QueryResponse(
            return_code=zalopay.SUCCESS if paid else zalopay.FAILED,
            return_message="Giao dịch thành công" if paid else "Giao dịch thất bại",
            sub_return_code=1 if paid else -54,
            amount=session.amount,
            zp_trans_id=session.transaction_no,
            server_time=_ms(session.paid_at or datetime.now(UTC)),
        )
    )


def _zalopay_refund(g: Gateways, refund: zalopay.RefundRequest) -> zalopay.RefundResponse:
    c = g.config.zalopay
    session = g.paid_by_transaction("zalopay", refund.zp_trans_id)
    if refund.app_id != c.app_id or not zalopay.mac_matches(c.key1.reveal(), refund.mac_data(), refund.mac):
        return zalopay.RefundResponse(
            return_code=zalopay.FAILED, sub_return_code=-402, sub_return_message="Unauthorized"
        )
    if session is None or not 0 < refund.amount <= session.amount - session.refunded:
        return zalopay.RefundResponse(
            return_code=zalopay.FAILED, sub_return_code=-13, sub_return_message="Refund not allowed"
        )
    session.refunded += refund.amount
    return zalopay.RefundResponse(
        return_code=zalopay.SUCCESS, return_message="Thành công", refund_id=g.number()
    )


async def zalopay_refund(request: Request) -> Response:
    g = _gateways(request)
    refund = msgspec.json.decode(await request.body(), type=zalopay.RefundRequest, strict=False)
    return _once(g, f"zalopay:{refund.m_refund_id}", lambda: _zalopay_refund(g, refund))


async def zalopay_page(request: Request) -> Response:
    try:
        return _page(_gateways(request).by_token(request.query_params.get("order", "")), "ZaloPay")
    except Refused as exc:
        return HTMLResponse(html.escape(str(exc)), 404)


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


def _post_json(url: str, message: msgspec.Struct) -> httpx.Request:
    return httpx.Request(
        "POST", url, content=msgspec.json.encode(message), headers={"content-type": "application/json"}
    )


def _vnpay_notice(g: Gateways, session: Session) -> tuple[httpx.Request, str]:
    paid = session.status == "paid"
    assert session.paid_at is not None
    params = {
        "vnp_Amount": str(session.amount),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": f"VNP{session.transaction_no}" if paid else "",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": session.info,
        "vnp_PayDate": vnpay.timestamp(session.paid_at),
        "vnp_ResponseCode": vnpay.SUCCESS if paid else vnpay.CUSTOMER_CANCELLED,
        "vnp_TmnCode": g.config.vnpay.tmn_code,
        "vnp_TransactionNo": str(session.transaction_no) if paid else "0",
        "vnp_TransactionStatus": vnpay.SUCCESS if paid else "02",
        "vnp_TxnRef": session.reference,
    }
    secret = g.config.vnpay.hash_secret.reveal()
    ipn = httpx.Request("GET", vnpay.signed_url(session.ipn_url, secret, params))
    return ipn, vnpay.signed_url(session.return_url, secret, params)


def _momo_notice(g: Gateways, session: Session) -> tuple[httpx.Request, str]:
    paid, create = session.status == "paid", session.momo_request
    assert create is not None and session.paid_at is not None
    ipn = momo.Ipn(
        partner_code=create.partner_code,
        order_id=create.order_id,
        request_id=create.request_id,
        amount=create.amount,
        order_info=create.order_info,
        trans_id=session.transaction_no,
        result_code=momo.SUCCESS if paid else momo.USER_DENIED,
        message="Successful." if paid else "Transaction denied by user.",
        pay_type="qr",
        response_time=_ms(session.paid_at),
        extra_data=create.extra_data,
    )
    ipn.sign(*_momo_keys(g))
    query = urlencode({k: str(v) for k, v in msgspec.to_builtins(ipn).items()})
    return _post_json(session.ipn_url, ipn), f"{session.return_url}?{query}"


def _zalopay_notice(g: Gateways, session: Session) -> tuple[httpx.Request | None, str]:
    paid, create = session.status == "paid", session.zalopay_request
    assert create is not None and session.paid_at is not None
    c = g.config.zalopay
    redirect = {
        "appid": str(c.app_id),
        "apptransid": session.reference,
        "pmcid": "38",
        "bankcode": "",
        "amount": str(session.amount),
        "discountamount": "0",
        "status": "1" if paid else "-49",
    }
    redirect["checksum"] = zalopay.mac(c.key2.reveal(), zalopay.redirect_data(redirect))
    return_url = f"{session.return_url}?{urlencode(redirect)}"
    if not paid:
        return None, return_url  # ZaloPay calls back only for a paid order
    data = msgspec.json.encode(
        zalopay.CallbackData(
            app_id=c.app_id,
            app_trans_id=create.app_trans_id,
            app_time=create.app_time,
            app_user=create.app_user,
            amount=create.amount,
            embed_data=create.embed_data,
            item=create.item,
            zp_trans_id=session.transaction_no,
            server_time=_ms(session.paid_at),
            merchant_user_id="sandbox-buyer",
        )
    ).decode()
    callback = zalopay.Callback(data=data, mac=zalopay.mac(c.key2.reveal(), data))
    return _post_json(session.ipn_url, callback), return_url


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
    g = _gateways(request)
    http: httpx.AsyncClient = request.app.state.http
    body = await body_of(request, PayRequest)
    page = urlsplit(await _gateway_page(http, body.payment_url))
    params = dict(parse_qsl(page.query, keep_blank_values=True))
    notice: Callable[[Gateways, Session], tuple[httpx.Request | None, str]]
    if page.path == VNPAY_PAGE:
        session, notice = g.vnpay_session(params), _vnpay_notice
    elif page.path == MOMO_PAGE:
        session, notice = g.by_token(params.get("t", "")), _momo_notice
    elif page.path == ZALOPAY_PAGE:
        session, notice = g.by_token(params.get("order", "")), _zalopay_notice
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
    config = config or settings.load("sandbox")
    logs.setup("sandbox", config.log_level)
    vnpay_ipn = config.extra.get("SANDBOX_VNPAY_IPN_URL") or f"{config.public_url}/api/payments/vnpay/ipn"

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.gateways = Gateways(gateway_config.load(), settings.service_url("sandbox"), vnpay_ipn)
        async with httpx.AsyncClient(transport=transport, timeout=15) as app.state.http:
            yield

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route(VNPAY_PAGE, vnpay_page, methods=["GET"]),
            Route("/merchant_webapi/api/transaction", vnpay_transaction, methods=["POST"]),
            Route("/v2/gateway/api/create", momo_create, methods=["POST"]),
            Route("/v2/gateway/api/query", momo_query, methods=["POST"]),
            Route("/v2/gateway/api/refund", momo_refund, methods=["POST"]),
            Route(MOMO_PAGE, momo_page, methods=["GET"]),
            Route("/v2/create", zalopay_create, methods=["POST"]),
            Route("/v2/query", zalopay_query, methods=["POST"]),
            Route("/v2/refund", zalopay_refund, methods=["POST"]),
            Route(ZALOPAY_PAGE, zalopay_page, methods=["GET"]),
            Route("/sandbox/pay", pay, methods=["POST"]),
        ],
        exception_handlers={Refused: _refused, msgspec.MsgspecError: _malformed, ShopError: _shop_error},
        lifespan=lifespan,
    )


app = make_app()

if __name__ == "__main__":
    from kit.serve import run

    run("devsinks.payments:app", "sandbox")
