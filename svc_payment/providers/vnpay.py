"""VNPay's merchant side: a signed redirect URL, IPNs by GET, querydr and refund on its merchant API."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import httpx
from starlette.requests import Request
from starlette.responses import Response

from kit.http import JSON
from payment_gateways import vnpay
from payment_gateways.config import VnpayConfig
from svc_payment.config import PaymentConfig
from svc_payment.ledger import Notice, Outcome, Payment, Refund, RefundResult
from svc_payment.providers.base import (
    Forged,
    Gateway,
    GatewayUnavailable,
)


class Vnpay(Gateway):
    method = "vnpay"
    _ANSWERS: ClassVar[dict[Outcome, vnpay.IpnAnswer]] = {
        Outcome.CONFIRMED: vnpay.CONFIRMED,
        Outcome.ALREADY: vnpay.ALREADY_CONFIRMED,
        Outcome.UNKNOWN: vnpay.ORDER_NOT_FOUND,
        Outcome.WRONG_AMOUNT: vnpay.INVALID_AMOUNT,
        Outcome.FORGED: vnpay.INVALID_CHECKSUM,
        Outcome.RETRY: vnpay.UNKNOWN_ERROR,
    }

    def __init__(self, config: PaymentConfig, gateway: VnpayConfig) -> None:
        super().__init__(config)
        self.config = gateway
        self.secret = gateway.hash_secret.reveal()

    async def open_session(
        self, http: httpx.AsyncClient, payment: Payment, reference: str, client_ip: str, now: datetime
    ) -> str:
        params = {
            "vnp_Version": vnpay.VERSION,
            "vnp_Command": "pay",
            "vnp_TmnCode": self.config.tmn_code,
            "vnp_Amount": str(vnpay.amount_of(payment.amount)),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": reference,
            "vnp_OrderInfo": f"Thanh toan don hang {payment.order_number}",
            "vnp_OrderType": "other",
            "vnp_Locale": "vn",
            "vnp_ReturnUrl": self.return_url,
            "vnp_IpAddr": client_ip,
            "vnp_CreateDate": vnpay.timestamp(now),
        }
        if payment.expires_at is not None:
            params["vnp_ExpireDate"] = vnpay.timestamp(payment.expires_at)
        return vnpay.signed_url(self.config.payment_url, self.secret, params)

    def _signed_params(self, query: Mapping[str, str]) -> dict[str, str]:
        params = dict(query)
        if not vnpay.verify(self.secret, params) or params.get("vnp_TmnCode") != self.config.tmn_code:
            raise Forged("vnp_SecureHash does not match")
        return params

    async def read_ipn(self, request: Request) -> Notice:
        params = self._signed_params(request.query_params)
        try:
            paid_at = vnpay.parse_timestamp(params["vnp_PayDate"]) if params.get("vnp_PayDate") else None
            code = params["vnp_ResponseCode"]
            return Notice(
                method=self.method,
                reference=params["vnp_TxnRef"],
                amount=vnpay.vnd_of(params["vnp_Amount"]),
                paid=code == vnpay.SUCCESS and params.get("vnp_TransactionStatus") == vnpay.SUCCESS,
                code=code,
                message=f"VNPay response code {code}",
                transaction_id=params.get("vnp_TransactionNo") or None,
                paid_at=paid_at,
            )
        except (KeyError, ValueError) as exc:
            raise Forged(f"malformed IPN: {exc!r}") from exc

    def answer(self, outcome: Outcome) -> Response:
        return JSON(self._ANSWERS[outcome])  # always 200: the RspCode is the answer

    def read_return(self, query: Mapping[str, str]) -> str:
        return self._signed_params(query).get("vnp_TxnRef", "")

    async def query(self, http: httpx.AsyncClient, payment: Payment, now: datetime) -> Notice | None:
        assert payment.reference is not None and payment.session_at is not None
        request = vnpay.QueryRequest(
            vnp_RequestId=uuid.uuid4().hex,
            vnp_TmnCode=self.config.tmn_code,
            vnp_TxnRef=payment.reference,
            vnp_OrderInfo=f"Truy van don hang {payment.order_number}",
            vnp_TransactionDate=vnpay.timestamp(payment.session_at),
            vnp_CreateDate=vnpay.timestamp(now),
            vnp_IpAddr=self.server_ip,
        )
        request.sign(self.secret)
        answer = await self._post(http, self.config.api_url, request, vnpay.QueryResponse)
        if not answer.verify(self.secret):
            raise GatewayUnavailable("vnpay querydr answer has a bad signature")
        status = answer.vnp_TransactionStatus
        if answer.vnp_ResponseCode != vnpay.SUCCESS or status in ("", "01"):
            return None  # not found (the buyer never got to VNPay) or not finished yet
        return Notice(
            method=self.method,
            reference=answer.vnp_TxnRef,
            amount=vnpay.vnd_of(answer.vnp_Amount),
            paid=status == vnpay.SUCCESS,
            code=status,
            message=f"VNPay transaction status {status}",
            transaction_id=answer.vnp_TransactionNo or None,
            paid_at=vnpay.parse_timestamp(answer.vnp_PayDate) if answer.vnp_PayDate else None,
        )

    async def refund(
        self, http: httpx.AsyncClient, payment: Payment, refund: Refund, now: datetime
    ) -> RefundResult:
        assert payment.reference is not None and payment.session_at is not None
        request = vnpay.RefundRequest(
            vnp_RequestId=refund.id.hex,
            vnp_TmnCode=self.config.tmn_code,
            vnp_TransactionType=(
                vnpay.FULL_REFUND if refund.amount == payment.amount else vnpay.PARTIAL_REFUND
            ),
            vnp_TxnRef=payment.reference,
            vnp_Amount=str(vnpay.amount_of(refund.amount)),
            vnp_OrderInfo=f"Hoan tien don hang {payment.order_number}",
            vnp_TransactionNo=payment.transaction_id or "",
            vnp_TransactionDate=vnpay.timestamp(payment.session_at),
            vnp_CreateBy=refund.requested_by,
            vnp_CreateDate=vnpay.timestamp(now),
            vnp_IpAddr=self.server_ip,
        )
        request.sign(self.secret)
        answer = await self._post(http, self.config.api_url, request, vnpay.RefundResponse)
        if not answer.verify(self.secret):
            raise GatewayUnavailable("vnpay refund answer has a bad signature")
        if answer.vnp_ResponseCode == vnpay.SUCCESS:
            return RefundResult("SUCCEEDED", answer.vnp_TransactionNo or None)
        return RefundResult("FAILED", message=f"VNPay response code {answer.vnp_ResponseCode}")
