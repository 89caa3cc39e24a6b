"""The sandbox's ZaloPay: create, query and refund MAC'd with key1, the page, the callback MAC'd with key2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devsinks.sandbox.sessions import (
    ZALOPAY_PAGE,
    Gateways,
    Session,
    epoch_ms,
    gateways_of,
    once,
    post_json,
    token_page,
)
from kit.http import JSON
from payment_gateways import zalopay
from payment_gateways.common import vietnam_time


async def zalopay_create(request: Request) -> Response:
    g = gateways_of(request)
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
    g = gateways_of(request)
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
            server_time=epoch_ms(session.paid_at or datetime.now(UTC)),
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
    g = gateways_of(request)
    refund = msgspec.json.decode(await request.body(), type=zalopay.RefundRequest, strict=False)
    return once(g, f"zalopay:{refund.m_refund_id}", lambda: _zalopay_refund(g, refund))


async def zalopay_page(request: Request) -> Response:
    return token_page(request, "order", "ZaloPay")


def notice(g: Gateways, session: Session) -> tuple[httpx.Request | None, str]:
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
            server_time=epoch_ms(session.paid_at),
            merchant_user_id="sandbox-buyer",
        )
    ).decode()
    callback = zalopay.Callback(data=data, mac=zalopay.mac(c.key2.reveal(), data))
    return post_json(session.ipn_url, callback), return_url


routes = [
    Route("/v2/create", zalopay_create, methods=["POST"]),
    Route("/v2/query", zalopay_query, methods=["POST"]),
    Route("/v2/refund", zalopay_refund, methods=["POST"]),
    Route(ZALOPAY_PAGE, zalopay_page, methods=["GET"]),
]
