"""Reconciliation: a payment whose IPN was lost is settled from the gateway's query, exactly once."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from svc_payment import reconcile
from tests.svc_payment.conftest import Stack, buy, events, payment, payment_of, placed

NOW = timedelta(0)


async def test_a_lost_ipn_is_settled_by_querying_the_gateway_and_the_late_ipn_is_a_no_op(
    stack: Stack,
) -> None:
    orders = {method: await placed(stack, method) for method in ("vnpay", "momo", "zalopay")}
    results = {method: await buy(stack, order, notify=False) for method, order in orders.items()}
    assert not any(result["notified"] for result in results.values())
    for order in orders.values():
        assert (await payment_of(stack, order))["gateway_result"] is None

    assert await reconcile.settle_unsettled(stack.deps, NOW) >= 3
    for method, order in orders.items():
        row = await payment_of(stack, order, "SUCCEEDED")
        assert row["transaction_id"] == results[method]["transactionId"]
        assert len(await events(stack, "payment.success", order.order_id)) == 1

    # The IPN VNPay retries after all: it finds the payment settled and is told so.
    query = urlsplit(results["vnpay"]["returnUrl"]).query
    late = await stack.http.get(f"/api/payments/vnpay/ipn?{query}")
    assert late.json()["RspCode"] == "02"
    assert len(await events(stack, "payment.success", orders["vnpay"].order_id)) == 1


async def test_zalopay_reports_a_failure_only_when_asked(stack: Stack) -> None:
    order = await placed(stack, "zalopay")
    result = await buy(stack, order, "failed")
    assert not result["notified"]  # ZaloPay calls back for paid orders only
    await reconcile.settle_unsettled(stack.deps, NOW)
    await payment_of(stack, order, "FAILED")
    (failed,) = await events(stack, "payment.failed", order.order_id)
    assert failed["method"] == "zalopay"


async def test_sessions_the_buyer_has_not_finished_stay_pending(stack: Stack) -> None:
    order = await placed(stack, "vnpay")
    await stack.http.get(f"/api/payments/pay/{order.order_id}")
    await reconcile.settle_unsettled(stack.deps, NOW)
    row = await payment(stack, order.order_id)
    assert row is not None and row["status"] == "PENDING" and row["checked_at"] is not None
    assert await events(stack, "payment.failed", order.order_id) == []
    # Too recent for a scan that waits a minute: not even looked at.
    fresh = await placed(stack, "momo")
    await stack.http.get(f"/api/payments/pay/{fresh.order_id}")
    await reconcile.settle_unsettled(stack.deps, timedelta(minutes=1))
    row = await payment(stack, fresh.order_id)
    assert row is not None and row["checked_at"] is None
