"""The sandbox's MoMo: create, query and refund as signed JSON, the payment page, and the signed IPN."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devsinks.sandbox.sessions import (
    MOMO_MAX,
    MOMO_MIN,
    MOMO_PAGE,
    Gateways,
    Session,
    epoch_ms,
    gateways_of,
    once,
    post_json,
    token_page,
)
from kit.http import JSON
from payment_gateways import momo


def _momo_keys(g: Gateways) -> tuple[str, str]:
    return g.config.momo.access_key, g.config.momo.secret_key.reveal()


async def momo_create(request: Request) -> Response:
    g = gateways_of(request)
    access, secret = _momo_keys(g)
    create = msgspec.json.decode(await request.body(), type=momo.CreateRequest, strict=False)
    now = datetime.now(UTC)
    answer = momo.CreateResponse(
        partner_code=create.partner_code,
        request_id=create.request_id,
        order_id=create.order_id,
        amount=create.amount,
        response_time=epoch_ms(now),
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
    g = gateways_of(request)
    query = msgspec.json.decode(await request.body(), type=momo.QueryRequest, strict=False)
    answer = momo.QueryResponse(
        order_id=query.order_id, result_code=momo.NOT_FOUND, response_time=epoch_ms(datetime.now(UTC))
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
    answer.response_time = epoch_ms(datetime.now(UTC))
    return answer


async def momo_refund(request: Request) -> Response:
    g = gateways_of(request)
    refund = msgspec.json.decode(await request.body(), type=momo.RefundRequest, strict=False)
    return once(g, f"momo:{refund.request_id}", lambda: _momo_refund(g, refund))


async def momo_page(request: Request) -> Response:
    return token_page(request, "t", "MoMo")


def notice(g: Gateways, session: Session) -> tuple[httpx.Request, str]:
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
        response_time=epoch_ms(session.paid_at),
        extra_data=create.extra_data,
    )
    ipn.sign(*_momo_keys(g))
    query = urlencode({k: str(v) for k, v in msgspec.to_builtins(ipn).items()})
    return post_json(session.ipn_url, ipn), f"{session.return_url}?{query}"


routes = [
    Route("/v2/gateway/api/create", momo_create, methods=["POST"]),
    Route("/v2/gateway/api/query", momo_query, methods=["POST"]),
    Route("/v2/gateway/api/refund", momo_refund, methods=["POST"]),
    Route(MOMO_PAGE, momo_page, methods=["GET"]),
]
