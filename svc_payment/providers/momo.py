"""MoMo's merchant side: sessions, IPNs, query and refund as signed JSON POSTs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kit.errors import ErrorBody
from kit.http import JSON
from payment_gateways import momo
from payment_gateways.common import whole_vnd
from payment_gateways.config import MomoConfig
from svc_payment.config import PaymentConfig
from svc_payment.ledger import Notice, Outcome, Payment, Refund, RefundResult
from svc_payment.providers.base import (
    Forged,
    Gateway,
    GatewayRefused,
    GatewayUnavailable,
    from_epoch_ms,
)


class Momo(Gateway):
    method = "momo"
    _IPN = msgspec.json.Decoder(momo.Ipn, strict=False)

    def __init__(self, config: PaymentConfig, gateway: MomoConfig) -> None:
        super().__init__(config)
        self.config = gateway
        self.secret = gateway.secret_key.reveal()

    def _url(self, action: str) -> str:
        return f"{self.config.endpoint}/v2/gateway/api/{action}"

    async def open_session(
        self, http: httpx.AsyncClient, payment: Payment, reference: str, client_ip: str, now: datetime
    ) -> str:
        request = momo.CreateRequest(
            partner_code=self.config.partner_code,
            request_id=reference,
            amount=whole_vnd(payment.amount),
            order_id=reference,
            order_info=f"Thanh toan don hang {payment.order_number}",
            redirect_url=self.return_url,
            ipn_url=self.ipn_url,
        )
        request.sign(self.config.access_key, self.secret)
        answer = await self._post(http, self._url("create"), request, momo.CreateResponse)
        if answer.result_code != momo.SUCCESS or not answer.pay_url:
            raise GatewayRefused(f"MoMo result {answer.result_code}: {answer.message}")
        if not answer.verify(self.config.access_key, self.secret):
            raise GatewayUnavailable("momo create answer has a bad signature")
        return answer.pay_url

    def _signed(self, ipn: momo.Ipn) -> momo.Ipn:
        if ipn.partner_code != self.config.partner_code or not ipn.verify(
            self.config.access_key, self.secret
        ):
            raise Forged("MoMo signature does not match")
        return ipn

    async def read_ipn(self, request: Request) -> Notice:
        try:
            ipn = self._signed(self._IPN.decode(await request.body()))
        except msgspec.MsgspecError as exc:
            raise Forged(f"malformed IPN: {exc}") from exc
        return Notice(
            method=self.method,
            reference=ipn.order_id,
            amount=Decimal(ipn.amount),
            paid=ipn.result_code == momo.SUCCESS,
            code=str(ipn.result_code),
            message=ipn.message,
            transaction_id=str(ipn.trans_id),
            paid_at=from_epoch_ms(ipn.response_time),
        )

    def answer(self, outcome: Outcome) -> Response:
        if outcome in (Outcome.CONFIRMED, Outcome.ALREADY):
            return Response(status_code=204)  # what MoMo expects, within 15 s
        if outcome is Outcome.RETRY:
            return JSON(ErrorBody("ServiceUnavailable", "Please retry"), 503)
        if outcome is Outcome.UNKNOWN:
            return JSON(ErrorBody("NotFound", "No payment has this orderId"), 404)
        message = "Invalid signature" if outcome is Outcome.FORGED else "Amount does not match the order"
        return JSON(ErrorBody("ValidationError", message), 400)

    def read_return(self, query: Mapping[str, str]) -> str:
        try:
            return self._signed(msgspec.convert(dict(query), momo.Ipn, strict=False)).order_id
        except msgspec.MsgspecError as exc:
            raise Forged(f"malformed return: {exc}") from exc

    async def query(self, http: httpx.AsyncClient, payment: Payment, now: datetime) -> Notice | None:
        assert payment.reference is not None
        request = momo.QueryRequest(
            partner_code=self.config.partner_code, request_id=uuid.uuid4().hex, order_id=payment.reference
        )
        request.sign(self.config.access_key, self.secret)
        answer = await self._post(http, self._url("query"), request, momo.QueryResponse)
        if answer.result_code in momo.PENDING_CODES or answer.result_code == momo.NOT_FOUND:
            return None
        return self._answered(
            payment,
            answer.result_code == momo.SUCCESS,
            answer.amount,
            answer.result_code,
            answer.message,
            answer.trans_id,
            answer.response_time,
        )

    async def refund(
        self, http: httpx.AsyncClient, payment: Payment, refund: Refund, now: datetime
    ) -> RefundResult:
        request = momo.RefundRequest(
            partner_code=self.config.partner_code,
            order_id=refund.id.hex,
            request_id=str(refund.id),
            amount=whole_vnd(refund.amount),
            trans_id=int(payment.transaction_id or 0),
            description=refund.reason,
        )
        request.sign(self.config.access_key, self.secret)
        answer = await self._post(http, self._url("refund"), request, momo.RefundResponse)
        if answer.result_code == momo.SUCCESS:
            return RefundResult("SUCCEEDED", str(answer.trans_id))
        return RefundResult("FAILED", message=f"MoMo result {answer.result_code}: {answer.message}")
