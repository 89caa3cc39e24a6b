"""A payment's life through the real sandbox: created from order.created, paid or failed at the
gateway, settled by the IPN exactly once; forged notices change nothing; a cancelled order's late
payment is flagged for refund, never reopened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec

from kit.settings import Env
from payment_gateways import config, momo, vnpay, zalopay
from tests.orders import cancelled, new_order
from tests.support import drained, eventually, identity
from tests.svc_payment.conftest import (
    ADMIN,
    Stack,
    buy,
    events,
    payment,
    payment_of,
    placed,
    send,
)

GATEWAYS = config.read(Env())
SECRET = GATEWAYS.vnpay.hash_secret.reveal()


async def test_order_created_opens_one_payment_even_when_delivered_again(stack: Stack) -> None:
    order = new_order("momo", 99_000)
    await send(stack, order)
    row = await payment_of(stack, order)
    # The relay publishes it again, as after a crash between publishing and marking it sent, and the
    # order service sends it once more under a new event id.
    await stack.db.execute("UPDATE outbox SET sent_at = NULL WHERE event_id = $1", order.event_id)
    await send(stack, msgspec.structs.replace(order, event_id=uuid.uuid4()))
    unsent = "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"
    await eventually(lambda: stack.db.fetchval(unsent))
    await eventually(lambda: drained("payment.order.created"))  # and the consumer took them
    count = await stack.db.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", order.order_id)
    assert count == 1 and row["amount"] == 99_000 and row["method"] == "momo"

    mine = await stack.http.get(
        f"/api/payments/orders/{order.order_id}", headers=identity(user_id=order.user_id)
    )
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["status"] == "PENDING" and body["amount"] == 99000 and body["method"] == "momo"
    assert body["paymentId"] == str(row["id"])
    assert body["paymentUrl"].endswith(f"/api/payments/pay/{order.order_id}")
    assert (await stack.http.get(f"/api/payments/orders/{order.order_id}", headers=ADMIN)).status_code == 200
    other = await stack.http.get(f"/api/payments/orders/{order.order_id}", headers=identity())
    assert other.status_code == 404
    assert (await stack.http.get(f"/api/payments/orders/{order.order_id}")).status_code == 401


async def test_an_order_no_gateway_can_take_fails_its_payment_at_once(stack: Stack) -> None:
    cod = new_order("cod")
    fractional = new_order("zalopay", 10_000.5)
    await send(stack, cod, fractional)
    for order, code in ((cod, "UNSUPPORTED_METHOD"), (fractional, "INVALID_AMOUNT")):
        await payment_of(stack, order, "FAILED")
        (failed,) = await eventually(lambda o=order: events(stack, "payment.failed", o.order_id))
        assert failed["errorCode"] == code
        assert (await stack.http.get(f"/api/payments/pay/{order.order_id}")).status_code == 409


async def test_pay_redirects_to_a_gateway_page_the_sandbox_accepts(stack: Stack) -> None:
    order = await placed(stack, "vnpay")
    first = await stack.http.get(
        f"/api/payments/pay/{order.order_id}", headers={"x-forwarded-for": "203.0.113.9"}
    )
    assert first.status_code == 302
    location = first.headers["location"]
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["vnp_Amount"] == "12500000" and params["vnp_IpAddr"] == "203.0.113.9"
    assert params["vnp_TmnCode"] == GATEWAYS.vnpay.tmn_code and vnpay.verify(SECRET, params)
    # the same page on every click: one session per payment
    assert (await stack.http.get(f"/api/payments/pay/{order.order_id}")).headers["location"] == location
    page = await stack.sandbox.get(f"{urlsplit(location).path}?{urlsplit(location).query}")
    assert page.status_code == 200 and "125,000 VND" in page.text
    forged = urlencode({**params, "vnp_Amount": "100"})
    assert (await stack.sandbox.get(f"{urlsplit(location).path}?{forged}")).status_code == 400
    assert (await stack.http.get(f"/api/payments/pay/{uuid.uuid4()}")).status_code == 404


async def test_a_paid_vnpay_payment_succeeds_once_and_a_replayed_ipn_changes_nothing(stack: Stack) -> None:
    order = await placed(stack, "vnpay")
    result = await buy(stack, order)
    assert result["ipnStatus"] == 200 and msgspec.json.decode(result["ipnResponse"]) == {
        "RspCode": "00",
        "Message": "Confirm Success",
    }
    row = await payment_of(stack, order, "SUCCEEDED")
    assert row["transaction_id"] == result["transactionId"]
    # The IPN carries the same signed parameters as the return URL: replay them.
    query = urlsplit(result["returnUrl"]).query
    replay = await stack.http.get(f"/api/payments/vnpay/ipn?{query}")
    assert replay.json()["RspCode"] == "02"
    (success,) = await events(stack, "payment.success", order.order_id)
    assert success["paymentId"] == str(row["id"]) and success["amount"] == 125000
    assert success["method"] == "vnpay" and success["transactionId"] == result["transactionId"]
    assert await events(stack, "payment.failed", order.order_id) == []
    shown = await stack.http.get(f"/api/payments/vnpay/return?{query}")
    assert shown.status_code == 200 and shown.json()["status"] == "SUCCEEDED" and shown.json()["paid"]
    again = await stack.sandbox.post(
        "/sandbox/pay", json={"paymentUrl": row["gateway_url"], "outcome": "success"}
    )
    assert again.status_code == 409  # the gateway will not take the same payment twice


async def test_a_failed_payment_publishes_payment_failed(stack: Stack) -> None:
    for method in ("vnpay", "momo"):
        order = await placed(stack, method)
        result = await buy(stack, order, "failed")
        assert result["notified"]
        row = await payment_of(stack, order, "FAILED")
        (failed,) = await events(stack, "payment.failed", order.order_id)
        assert failed["paymentId"] == str(row["id"]) and failed["errorCode"] == row["failure_code"]
        assert failed["errorCode"] in (vnpay.CUSTOMER_CANCELLED, str(momo.USER_DENIED))
        assert await events(stack, "payment.success", order.order_id) == []


def _vnpay_ipn(reference: str, amount: int, code: str = "00") -> dict[str, str]:
    return {
        "vnp_Amount": str(amount),
        "vnp_BankCode": "NCB",
        "vnp_OrderInfo": "forged",
        "vnp_PayDate": vnpay.timestamp(datetime.now(UTC)),
        "vnp_ResponseCode": code,
        "vnp_TmnCode": GATEWAYS.vnpay.tmn_code,
        "vnp_TransactionNo": "1",
        "vnp_TransactionStatus": code,
        "vnp_TxnRef": reference,
    }


async def _vnpay_answer(stack: Stack, params: dict[str, str], secret: str = SECRET) -> str:
    url = vnpay.signed_url("/api/payments/vnpay/ipn", secret, params)
    response = await stack.http.get(url)
    assert response.status_code == 200
    code: str = response.json()["RspCode"]
    return code


async def test_forged_vnpay_ipns_are_answered_with_vnpay_codes_and_change_nothing(stack: Stack) -> None:
    order = await placed(stack, "vnpay")
    location = (await stack.http.get(f"/api/payments/pay/{order.order_id}")).headers["location"]
    reference = dict(parse_qsl(urlsplit(location).query))["vnp_TxnRef"]
    assert await _vnpay_answer(stack, _vnpay_ipn(reference, 12_500_000), secret="not-the-secret") == "97"
    assert await _vnpay_answer(stack, _vnpay_ipn(reference, 100)) == "04"
    assert await _vnpay_answer(stack, _vnpay_ipn(uuid.uuid4().hex, 12_500_000)) == "01"
    garbage = await stack.http.get("/api/payments/vnpay/ipn?vnp_TxnRef=x&vnp_SecureHash=00")
    assert garbage.json()["RspCode"] == "97"
    row = await payment(stack, order.order_id)
    assert row is not None and row["status"] == "PENDING" and row["gateway_result"] is None
    assert await events(stack, "payment.success", order.order_id) == []
    assert await events(stack, "payment.failed", order.order_id) == []


async def test_forged_momo_and_zalopay_notices_are_refused(stack: Stack) -> None:
    order = await placed(stack, "momo")
    await stack.http.get(f"/api/payments/pay/{order.order_id}")
    row = await payment(stack, order.order_id)
    assert row is not None
    ipn = momo.Ipn(
        partner_code=GATEWAYS.momo.partner_code,
        order_id=row["reference"],
        request_id=row["reference"],
        amount=125_000,
        order_info="x",
        trans_id=1,
        result_code=0,
        message="Successful.",
        response_time=1,
    )
    ipn.sign(GATEWAYS.momo.access_key, "wrong-secret")
    assert (
        await stack.http.post("/api/payments/momo/ipn", content=msgspec.json.encode(ipn))
    ).status_code == 400
    ipn.amount = 1
    ipn.sign(GATEWAYS.momo.access_key, GATEWAYS.momo.secret_key.reveal())
    assert (
        await stack.http.post("/api/payments/momo/ipn", content=msgspec.json.encode(ipn))
    ).status_code == 400
    assert (await stack.http.post("/api/payments/momo/ipn", content=b"{not json")).status_code == 400
    callback = zalopay.Callback(data='{"app_id":1}', mac="00")
    answer = await stack.http.post("/api/payments/zalopay/ipn", content=msgspec.json.encode(callback))
    assert answer.json() == {"return_code": -1, "return_message": "mac not equal"}
    assert (await stack.http.get("/api/payments/paypal/ipn")).status_code == 404
    row = await payment(stack, order.order_id)
    assert row is not None and row["status"] == "PENDING"


async def test_a_payment_after_the_order_was_cancelled_is_flagged_for_refund_not_reopened(
    stack: Stack,
) -> None:
    order = await placed(stack, "zalopay")
    page = (await stack.http.get(f"/api/payments/pay/{order.order_id}")).headers["location"]
    # The order's payment window closes while the buyer is at ZaloPay.
    await send(stack, cancelled(order.order_id, "payment window closed"))
    await payment_of(stack, order, "CANCELLED")
    result = await buy(stack, order, url=page)
    assert msgspec.json.decode(result["ipnResponse"])["return_code"] == 1
    row = await payment_of(stack, order, "REFUND_REQUIRED")
    assert row["transaction_id"] == result["transactionId"]
    assert await events(stack, "payment.success", order.order_id) == []
    assert (await stack.http.get(f"/api/payments/pay/{order.order_id}")).status_code == 409


async def test_cancelling_a_paid_order_flags_its_payment_and_an_early_cancel_wins(stack: Stack) -> None:
    paid = await placed(stack, "momo")
    await buy(stack, paid)
    await payment_of(stack, paid, "SUCCEEDED")
    await send(stack, cancelled(paid.order_id))
    await payment_of(stack, paid, "REFUND_REQUIRED")

    early = new_order("vnpay")
    await send(stack, cancelled(early.order_id))  # overtakes its order.created (another queue)
    await eventually(
        lambda: stack.db.fetchval("SELECT 1 FROM early_cancellations WHERE order_id = $1", early.order_id)
    )
    await send(stack, early)
    await payment_of(stack, early, "CANCELLED")
    assert (await stack.http.get(f"/api/payments/pay/{early.order_id}")).status_code == 409
