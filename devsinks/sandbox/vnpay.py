"""The sandbox's VNPay: the payment page, querydr and refund on the merchant API, and the signed IPN."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from devsinks.sandbox.sessions import VNPAY_PAGE, Gateways, Refused, Session, gateways_of, once, page
from kit.http import JSON
from payment_gateways import vnpay


def session_of(g: Gateways, params: dict[str, str]) -> Session:
    """VNPay's session exists once the buyer opens the signed URL (the page, or the buyer in /sandbox/pay)."""
    c = g.config.vnpay
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
    session = g.sessions.get(("vnpay", reference))
    if session is None:
        session = g.sessions[("vnpay", reference)] = Session(
            "vnpay",
            reference,
            amount,
            params.get("vnp_OrderInfo", ""),
            return_url,
            g.vnpay_ipn_url,
            created=params["vnp_CreateDate"],
            expires_at=expires_at,
        )
    elif session.amount != amount:
        raise Refused("vnp_TxnRef already used with another amount")
    return session


async def vnpay_page(request: Request) -> Response:
    try:
        session = session_of(gateways_of(request), dict(request.query_params))
    except Refused as exc:
        return HTMLResponse(f"<!doctype html><title>VNPay sandbox</title><p>{html.escape(str(exc))}", 400)
    return page(session, "VNPay")


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
    g = gateways_of(request)
    body = await request.body()
    command = msgspec.json.decode(body, type=vnpay.Command).vnp_Command
    if command == "querydr":
        return JSON(_vnpay_query(g, body))
    if command == "refund":
        refund = msgspec.json.decode(body, type=vnpay.RefundRequest, strict=False)
        return once(g, f"vnpay:{refund.vnp_RequestId}", lambda: _vnpay_refund(g, refund))
    return JSON({"vnp_ResponseCode": "99", "vnp_Message": f"Unknown vnp_Command {command!r}"})


def notice(g: Gateways, session: Session) -> tuple[httpx.Request, str]:
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


routes = [
    Route(VNPAY_PAGE, vnpay_page, methods=["GET"]),
    Route("/merchant_webapi/api/transaction", vnpay_transaction, methods=["POST"]),
]
