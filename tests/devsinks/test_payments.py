"""The gateway sandbox as a merchant meets it: it checks our signatures, signs its own notifications
(verifiable with the same protocol modules), answers queries truthfully and refunds each request once.

A small recording app stands in for the merchant, reached through an injected ASGI transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devsinks import payments
from devsinks.sandbox.sessions import VNPAY_PAGE
from kit import settings
from payment_gateways import config, momo, vnpay, zalopay
from tests.support import serve

pytestmark = pytest.mark.offline

GATEWAYS = config.read(settings.Env())
VNPAY_SECRET = GATEWAYS.vnpay.hash_secret.reveal()
MOMO_KEYS = (GATEWAYS.momo.access_key, GATEWAYS.momo.secret_key.reveal())


class Merchant:
    """Records every notification and answers as a merchant that accepts them."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []

    async def notified(self, request: Request) -> Response:
        self.received.append((request.method, str(request.url), await request.body()))
        if request.url.path.endswith("/momo/ipn"):
            return Response(status_code=204)
        if request.url.path.endswith("/zalopay/ipn"):
            return JSONResponse({"return_code": 1, "return_message": "success"})
        return JSONResponse({"RspCode": "00", "Message": "Confirm Success"})


@pytest.fixture
async def merchant() -> Merchant:
    return Merchant()


@pytest.fixture
async def gateway(merchant: Merchant) -> AsyncIterator[httpx.AsyncClient]:
    shop = Starlette(routes=[Route("/api/payments/{method}/ipn", merchant.notified, methods=["GET", "POST"])])
    app = payments.make_app(transport=httpx.ASGITransport(app=shop))
    async with serve(app) as client:
        yield client


def _vnpay_page(reference: str, amount: int = 5_000_000, secret: str = VNPAY_SECRET) -> str:
    now = datetime.now(UTC)
    params = {
        "vnp_Version": vnpay.VERSION,
        "vnp_Command": "pay",
        "vnp_TmnCode": GATEWAYS.vnpay.tmn_code,
        "vnp_Amount": str(amount),
        "vnp_CurrCode": "VND",
        "vnp_TxnRef": reference,
        "vnp_OrderInfo": "Thanh toan don hang 1",
        "vnp_OrderType": "other",
        "vnp_Locale": "vn",
        "vnp_ReturnUrl": "http://shop.test/api/payments/vnpay/return",
        "vnp_IpAddr": "127.0.0.1",
        "vnp_CreateDate": vnpay.timestamp(now),
        "vnp_ExpireDate": vnpay.timestamp(now + timedelta(minutes=15)),
    }
    return vnpay.signed_url(VNPAY_PAGE, secret, params)


def _querydr(reference: str, created: str) -> vnpay.QueryRequest:
    request = vnpay.QueryRequest(
        vnp_RequestId=reference + "q",
        vnp_TmnCode=GATEWAYS.vnpay.tmn_code,
        vnp_TxnRef=reference,
        vnp_OrderInfo="query",
        vnp_TransactionDate=created,
        vnp_CreateDate=created,
        vnp_IpAddr="127.0.0.1",
    )
    request.sign(VNPAY_SECRET)
    return request


async def test_vnpay_page_needs_the_merchants_signature(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get(_vnpay_page("r1", secret="forged"))).status_code == 400
    page = await gateway.get(_vnpay_page("r1"))
    assert page.status_code == 200 and "50,000 VND" in page.text


async def test_a_vnpay_payment_is_notified_signed_and_queried_truthfully(
    gateway: httpx.AsyncClient, merchant: Merchant
) -> None:
    url = _vnpay_page("r2")
    created = dict(parse_qsl(urlsplit(url).query))["vnp_CreateDate"]
    api = "/merchant_webapi/api/transaction"
    unknown = await gateway.post(api, content=msgspec.json.encode(_querydr("r2", created)))
    assert unknown.json()["vnp_ResponseCode"] == vnpay.NOT_FOUND  # the buyer has not opened the page yet
    paid = await gateway.post("/sandbox/pay", json={"paymentUrl": url, "outcome": "success"})
    assert paid.status_code == 200 and paid.json()["ipnStatus"] == 200
    ((method, ipn_url, _),) = merchant.received
    params = dict(parse_qsl(urlsplit(ipn_url).query))
    assert method == "GET" and vnpay.verify(VNPAY_SECRET, params)
    assert (
        params["vnp_ResponseCode"] == "00"
        and params["vnp_Amount"] == "5000000"
        and params["vnp_TxnRef"] == "r2"
    )
    answer = msgspec.json.decode(
        (await gateway.post(api, content=msgspec.json.encode(_querydr("r2", created)))).content,
        type=vnpay.QueryResponse,
    )
    assert answer.verify(VNPAY_SECRET) and answer.vnp_TransactionStatus == "00"
    assert answer.vnp_TransactionNo == paid.json()["transactionId"]
    forged = _querydr("r2", created)
    forged.vnp_TxnRef = "r3"
    assert (await gateway.post(api, content=msgspec.json.encode(forged))).json()["vnp_ResponseCode"] == "97"
    twice = await gateway.post("/sandbox/pay", json={"paymentUrl": url, "outcome": "success"})
    assert twice.status_code == 409


async def test_a_vnpay_refund_request_is_carried_out_once(gateway: httpx.AsyncClient) -> None:
    url = _vnpay_page("r4")
    created = dict(parse_qsl(urlsplit(url).query))["vnp_CreateDate"]
    paid = await gateway.post("/sandbox/pay", json={"paymentUrl": url, "outcome": "success", "notify": False})
    refund = vnpay.RefundRequest(
        vnp_RequestId="refund-1",
        vnp_TmnCode=GATEWAYS.vnpay.tmn_code,
        vnp_TransactionType=vnpay.PARTIAL_REFUND,
        vnp_TxnRef="r4",
        vnp_Amount="3000000",
        vnp_OrderInfo="refund",
        vnp_TransactionNo=paid.json()["transactionId"],
        vnp_TransactionDate=created,
        vnp_CreateBy="admin",
        vnp_CreateDate=created,
        vnp_IpAddr="127.0.0.1",
    )
    refund.sign(VNPAY_SECRET)
    api = "/merchant_webapi/api/transaction"
    first = await gateway.post(api, content=msgspec.json.encode(refund))
    again = await gateway.post(api, content=msgspec.json.encode(refund))
    assert first.json()["vnp_ResponseCode"] == "00" and again.content == first.content
    refund.vnp_RequestId = "refund-2"  # a new request for as much again: only 20,000 VND are left
    refund.sign(VNPAY_SECRET)
    assert (await gateway.post(api, content=msgspec.json.encode(refund))).json()["vnp_ResponseCode"] == "02"


def _momo_create(order_id: str, request_id: str, amount: int = 60_000) -> momo.CreateRequest:
    create = momo.CreateRequest(
        partner_code=GATEWAYS.momo.partner_code,
        request_id=request_id,
        amount=amount,
        order_id=order_id,
        order_info="order",
        redirect_url="http://shop.test/api/payments/momo/return",
        ipn_url="http://shop.test/api/payments/momo/ipn",
    )
    create.sign(*MOMO_KEYS)
    return create


async def test_momo_sessions_check_signatures_are_idempotent_and_notify_signed(
    gateway: httpx.AsyncClient, merchant: Merchant
) -> None:
    create = _momo_create("m1", "m1")
    forged = msgspec.structs.replace(create, amount=1_000)
    refused = await gateway.post("/v2/gateway/api/create", content=msgspec.json.encode(forged))
    assert refused.json()["resultCode"] == 13
    first = msgspec.json.decode(
        (await gateway.post("/v2/gateway/api/create", content=msgspec.json.encode(create))).content,
        type=momo.CreateResponse,
    )
    assert first.result_code == 0 and first.verify(*MOMO_KEYS) and first.pay_url
    again = await gateway.post("/v2/gateway/api/create", content=msgspec.json.encode(create))
    assert again.json()["resultCode"] == 0
    other = await gateway.post(
        "/v2/gateway/api/create", content=msgspec.json.encode(_momo_create("m1", "m1-b"))
    )
    assert other.json()["resultCode"] == 41
    await gateway.post("/sandbox/pay", json={"paymentUrl": first.pay_url, "outcome": "failed"})
    ((method, _, body),) = merchant.received
    ipn = msgspec.json.decode(body, type=momo.Ipn)
    assert method == "POST" and ipn.verify(*MOMO_KEYS) and ipn.result_code == momo.USER_DENIED


async def test_zalopay_calls_back_only_for_a_paid_order(
    gateway: httpx.AsyncClient, merchant: Merchant
) -> None:
    key1, key2 = GATEWAYS.zalopay.key1.reveal(), GATEWAYS.zalopay.key2.reveal()
    urls = []
    for suffix in ("z1", "z2"):
        create = zalopay.CreateRequest(
            app_id=GATEWAYS.zalopay.app_id,
            app_user="buyer",
            app_trans_id=zalopay.app_trans_id(datetime.now(UTC), suffix),
            app_time=int(datetime.now(UTC).timestamp() * 1000),
            amount=70_000,
            description="order",
            callback_url="http://shop.test/api/payments/zalopay/ipn",
        )
        assert (await gateway.post("/v2/create", content=msgspec.json.encode(create))).json()[
            "return_code"
        ] == 2
        create.mac = zalopay.mac(key1, create.mac_data())
        urls.append(
            (await gateway.post("/v2/create", content=msgspec.json.encode(create))).json()["order_url"]
        )
    failed = await gateway.post("/sandbox/pay", json={"paymentUrl": urls[0], "outcome": "failed"})
    assert not failed.json()["notified"] and merchant.received == []
    paid = await gateway.post("/sandbox/pay", json={"paymentUrl": urls[1], "outcome": "success"})
    assert paid.json()["notified"]
    ((_, _, body),) = merchant.received
    callback = msgspec.json.decode(body, type=zalopay.Callback)
    assert zalopay.mac_matches(key2, callback.data, callback.mac)
    data = msgspec.json.decode(callback.data, type=zalopay.CallbackData)
    assert data.amount == 70_000 and str(data.zp_trans_id) == paid.json()["transactionId"]
    unknown = await gateway.post(
        "/sandbox/pay", json={"paymentUrl": "http://x/openinapp?order=no", "outcome": "success"}
    )
    assert unknown.status_code == 409
