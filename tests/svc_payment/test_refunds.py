"""Refunds: Admin only, through the payment's gateway, never more than was paid, announced once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from svc_payment import providers, reconcile
from tests.support import identity
from tests.svc_payment.conftest import ADMIN, Stack, buy, events, payment_of, placed


async def _paid(stack: Stack, method: str, amount: float = 125_000) -> uuid.UUID:
    order = await placed(stack, method, amount)
    await buy(stack, order)
    row = await payment_of(stack, order, "SUCCEEDED")
    payment_id: uuid.UUID = row["id"]
    return payment_id


async def test_an_admin_refunds_a_whole_payment_and_payment_refunded_goes_out(stack: Stack) -> None:
    for method in ("vnpay", "momo", "zalopay"):
        payment_id = await _paid(stack, method)
        response = await stack.http.post(f"/api/payments/{payment_id}/refund", headers=ADMIN)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "SUCCEEDED" and body["paymentStatus"] == "REFUNDED"
        assert body["amount"] == 125000 and body["refundedAmount"] == 125000
        (refunded,) = await events(stack, "payment.refunded", uuid.UUID(body["orderId"]))
        assert refunded["paymentId"] == str(payment_id) and refunded["refundId"] == body["refundId"]
        assert refunded["amount"] == 125000 and refunded["fullyRefunded"] is True
        again = await stack.http.post(f"/api/payments/{payment_id}/refund", headers=ADMIN)
        assert again.status_code == 409


async def test_partial_refunds_add_up_to_the_payment_and_never_beyond(stack: Stack) -> None:
    payment_id = await _paid(stack, "vnpay", 100_000)
    url = f"/api/payments/{payment_id}/refund"
    first = await stack.http.post(url, json={"amount": 30000.5, "reason": "one item missing"}, headers=ADMIN)
    assert first.status_code == 201, first.text
    assert first.json()["paymentStatus"] == "PARTIALLY_REFUNDED" and first.json()["refundedAmount"] == 30000.5
    too_much = await stack.http.post(url, json={"amount": 70000}, headers=ADMIN)
    assert too_much.status_code == 422
    assert (await stack.http.post(url, json={"amount": 0}, headers=ADMIN)).status_code == 400
    assert (await stack.http.post(url, json={"amount": 1.234}, headers=ADMIN)).status_code == 400
    assert (await stack.http.post(url, json={"amount": "x"}, headers=ADMIN)).status_code == 400
    rest = await stack.http.post(url, json={}, headers=ADMIN)
    assert rest.status_code == 201 and rest.json()["amount"] == 69999.5
    assert rest.json()["paymentStatus"] == "REFUNDED" and rest.json()["refundedAmount"] == 100000
    refunded = await events(stack, "payment.refunded", uuid.UUID(rest.json()["orderId"]))
    assert [r["fullyRefunded"] for r in refunded] == [False, True]


async def test_only_an_admin_refunds_and_only_a_paid_payment(stack: Stack) -> None:
    payment_id = await _paid(stack, "momo")
    url = f"/api/payments/{payment_id}/refund"
    assert (await stack.http.post(url, headers=identity())).status_code == 403
    assert (await stack.http.post(url, headers=identity("Seller"))).status_code == 403
    assert (await stack.http.post(url)).status_code == 401
    assert (await stack.http.post(f"/api/payments/{uuid.uuid4()}/refund", headers=ADMIN)).status_code == 404
    assert (await stack.http.post(url, json={"amount": 100.5}, headers=ADMIN)).status_code == 400  # whole VND
    pending = await placed(stack, "vnpay")
    row = await payment_of(stack, pending)
    assert (await stack.http.post(f"/api/payments/{row['id']}/refund", headers=ADMIN)).status_code == 409


async def test_a_refund_the_gateway_did_not_answer_is_sent_again_and_counted_once(stack: Stack) -> None:
    payment_id = await _paid(stack, "zalopay")
    gateways = providers.PROVIDERS.of(stack.deps)
    wired = gateways.http
    gateways.http = httpx.AsyncClient(timeout=1)  # the sandbox is not listening on its port: no answer
    try:
        response = await stack.http.post(f"/api/payments/{payment_id}/refund", headers=ADMIN)
    finally:
        await gateways.http.aclose()
        gateways.http = wired
    assert response.status_code == 202 and response.json()["status"] == "PENDING"
    assert response.json()["paymentStatus"] == "SUCCEEDED"
    # Meanwhile nothing more can be refunded: the pending refund holds the whole amount.
    assert (await stack.http.post(f"/api/payments/{payment_id}/refund", headers=ADMIN)).status_code == 422
    await reconcile.resend_refunds(stack.deps, timedelta(0))
    status = await stack.db.fetchval("SELECT status FROM payments WHERE id = $1", payment_id)
    assert status == "REFUNDED"
    await reconcile.resend_refunds(stack.deps, timedelta(0))
    (refunded,) = await events(stack, "payment.refunded", uuid.UUID(response.json()["orderId"]))
    assert refunded["refundId"] == response.json()["refundId"]
