"""svc_payment: payments of orders through VNPay, MoMo and ZaloPay (CONTRACT.md section 4, payments).

A payment is created from `order.created` (events.py); the buyer reaches the gateway through
`/api/payments/pay/{orderId}`; the gateway's IPN settles it (ledger.py), reconciliation (reconcile.py)
settles what an IPN did not. Gateway protocols are in `payment_gateways`, their I/O in providers/.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import BusinessRuleViolation, NotFound, invalid
from kit.http import JSON, body_of, path_uuid
from kit.identity import require_role, require_user
from kit.openapi import doc
from payment_gateways import METHODS
from svc_payment import events, ledger, providers, reconcile, store
from svc_payment.config import PaymentConfig
from svc_payment.ledger import Outcome, Payment
from svc_payment.providers import Forged
from svc_payment.schemas import PaymentView, RefundRequest, RefundView, ReturnView

log = logging.getLogger(__name__)

# What an IPN handler catches to answer "call again" in the gateway's own terms instead of a 503.
_DEPENDENCY_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _client_ip(request: Request) -> str:
    """The buyer's address: the edge appends the peer it saw to X-Forwarded-For."""
    forwarded = request.headers.get("x-forwarded-for", "").rsplit(",", 1)[-1].strip()
    return forwarded or (request.client.host if request.client else "127.0.0.1")


def _payment_url(request: Request, order_id: uuid.UUID) -> str:
    return f"{providers.PROVIDERS.of(deps(request)).config.public_url}/api/payments/pay/{order_id}"


GATEWAY = {"method": {"type": "string", "enum": list(METHODS)}}


@doc("The payment of an order (its buyer or an Admin)", response=PaymentView, auth="user")
async def payment_of_order(request: Request) -> Response:
    who = require_user(request)
    order_id = path_uuid(request, "orderId", "Payment not found")
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(store.PAYMENT_BY_ORDER, order_id)
    if row is None or (row["user_id"] != who.user_id and not who.is_admin):
        raise NotFound("Payment not found")
    p = Payment.of(row)
    return JSON(
        PaymentView(
            payment_id=p.id,
            order_id=p.order_id,
            status=p.status,
            amount=float(p.amount),
            refunded_amount=float(p.refunded_amount),
            currency=p.currency,
            method=p.method,
            payment_url=_payment_url(request, p.order_id),
            transaction_id=p.transaction_id,
            paid_at=p.paid_at,
            created_at=p.created_at,
        )
    )


async def _payment_of(pool: asyncpg.Pool, order_id: uuid.UUID, wait: float) -> Payment | None:
    """The order's payment, waiting up to `wait` s for an `order.created` still on its way."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(store.PAYMENT_BY_ORDER, order_id)
        if row is not None:
            return Payment.of(row)
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(0.05)


@doc(
    "Send the buyer to the gateway's payment page (302 to it); 409 once the payment is settled or expired",
    status=302,
    errors=(409,),
)
async def pay(request: Request) -> Response:
    order_id = path_uuid(request, "orderId", "Payment not found")
    d = deps(request)
    gateways = providers.PROVIDERS.of(d)
    payment = await _payment_of(d.db, order_id, gateways.config.pay_wait)
    if payment is None:
        raise NotFound("Payment not found")
    payment.check_payable(datetime.now(UTC))
    url = payment.gateway_url or await gateways.open_session(d.db, payment.id, _client_ip(request))
    return RedirectResponse(url, status_code=302)


@doc(
    "A gateway's payment notification (VNPay GET with its query, MoMo and ZaloPay POST with their JSON); "
    "signature-checked; answered in the gateway's own terms (VNPay and ZaloPay a JSON code, MoMo a status)",
    path=GATEWAY,
    body=Any,
    body_optional=True,
    response=dict[str, Any],
    also=(204,),
    errors=(400,),
)
async def ipn(request: Request) -> Response:
    gateway = providers.PROVIDERS.of(deps(request)).get(request.path_params["method"])
    try:
        notice = await gateway.read_ipn(request)
    except Forged as exc:
        log.warning("gateway notice refused", extra={"method": gateway.method, "reason": str(exc)})
        return gateway.answer(Outcome.FORGED)
    try:
        async with deps(request).db.acquire() as conn, conn.transaction():
            outcome = await ledger.settle(conn, notice, "ipn")
    except _DEPENDENCY_ERRORS as exc:
        log.warning("gateway notice not recorded", extra={"error": repr(exc)})
        outcome = Outcome.RETRY
    return gateway.answer(outcome)


@doc(
    "Where the gateway sends the buyer back (with its signed query): the payment's state, read only",
    response=ReturnView,
    path=GATEWAY,
    errors=(400,),
)
async def return_page(request: Request) -> Response:
    gateway = providers.PROVIDERS.of(deps(request)).get(request.path_params["method"])
    try:
        reference = gateway.read_return(request.query_params)
    except Forged:
        raise invalid("signature", "The gateway's signature does not match") from None
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(store.PAYMENT_BY_REFERENCE, reference)
    if row is None or row["method"] != gateway.method:
        raise NotFound("Payment not found")
    p = Payment.of(row)
    return JSON(
        ReturnView(
            payment_id=p.id,
            order_id=p.order_id,
            order_number=p.order_number,
            method=p.method,
            amount=float(p.amount),
            status=p.status,
            paid=p.gateway_result == "paid",
        )
    )


@doc(
    "Refund a payment through its gateway, all of it by default",
    body=RefundRequest,
    body_optional=True,
    response=RefundView,
    status=201,
    also=(202,),
    auth="Admin",
    errors=(409, 422),
)
async def refund(request: Request) -> Response:
    who = require_role(request, "Admin")
    payment_id = path_uuid(request, "paymentId", "Payment not found")
    body = await body_of(request, RefundRequest) if await request.body() else RefundRequest()
    d = deps(request)
    async with d.db.acquire() as conn, conn.transaction():
        payment, pending = await ledger.start_refund(
            conn, payment_id, body.amount, body.reason, who.email or str(who.user_id)
        )
    result = await reconcile.send(d, payment, pending)
    async with d.db.acquire() as conn:
        state = await conn.fetchrow(store.REFUND_STATE, pending.id)
    if state["status"] == "FAILED":
        raise BusinessRuleViolation(f"The gateway refused the refund: {result.message}")
    view = RefundView(
        refund_id=pending.id,
        payment_id=payment.id,
        order_id=payment.order_id,
        amount=float(pending.amount),
        status=state["status"],
        payment_status=state["payment_status"],
        refunded_amount=float(state["refunded_amount"]),
        message="" if state["status"] != "PENDING" else "The gateway has not answered yet; retried",
    )
    # 202: recorded and sent, but the gateway's answer is still to come (reconciliation resends it).
    return JSON(view, 201 if state["status"] == "SUCCEEDED" else 202)


routes = [
    Route("/api/payments/orders/{orderId}", payment_of_order, methods=["GET"]),
    Route("/api/payments/pay/{orderId}", pay, methods=["GET"]),
    Route("/api/payments/{method}/ipn", ipn, methods=["GET", "POST"]),
    Route("/api/payments/{method}/return", return_page, methods=["GET"]),
    Route("/api/payments/{paymentId}/refund", refund, methods=["POST"]),
]

service = Service(
    "payment",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    resources=[providers.PROVIDERS],
    jobs=[reconcile.run],
    uses_redis=False,
    settings=PaymentConfig,
)
app = make_app(service)
