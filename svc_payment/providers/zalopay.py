"""ZaloPay's merchant side: orders and refunds MAC'd with key1, callbacks and redirects with key2."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kit.http import JSON
from payment_gateways import zalopay
from payment_gateways.common import VIETNAM, whole_vnd
from payment_gateways.config import ZalopayConfig
from svc_payment.config import PaymentConfig
from svc_payment.ledger import Notice, Outcome, Payment, Refund, RefundResult
from svc_payment.providers.base import (
    Forged,
    Gateway,
    GatewayRefused,
    epoch_ms,
    from_epoch_ms,
)


class Zalopay(Gateway):
    method = "zalopay"
    _CALLBACK = msgspec.json.Decoder(zalopay.Callback, strict=False)
    _DATA = msgspec.json.Decoder(zalopay.CallbackData, strict=False)
    _ANSWERS: ClassVar[dict[Outcome, zalopay.CallbackAnswer]] = {
        Outcome.CONFIRMED: zalopay.DONE,
        Outcome.ALREADY: zalopay.ALREADY_DONE,
        Outcome.UNKNOWN: zalopay.rejected("order not found"),
        Outcome.WRONG_AMOUNT: zalopay.rejected("invalid amount"),
        Outcome.FORGED: zalopay.rejected("mac not equal"),
        Outcome.RETRY: zalopay.RETRY,
    }

    def __init__(self, config: PaymentConfig, gateway: ZalopayConfig) -> None:
        super().__init__(config)
        self.config = gateway
        self.key1 = gateway.key1.reveal()
        self.key2 = gateway.key2.reveal()

    def reference(self, payment: Payment, now: datetime) -> str:
        return zalopay.app_trans_id(now, payment.id.hex)

    async def open_session(
        self, http: httpx.AsyncClient, payment: Payment, reference: str, client_ip: str, now: datetime
    ) -> str:
        window = 900 if payment.expires_at is None else (payment.expires_at - now).total_seconds()
        request = zalopay.CreateRequest(
            app_id=self.config.app_id,
            app_user=str(payment.user_id),
            app_trans_id=reference,
            app_time=epoch_ms(now),
            amount=whole_vnd(payment.amount),
            embed_data=json.dumps({"redirecturl": self.return_url}),
            description=f"Shop - Thanh toan don hang #{payment.order_number}",
            callback_url=self.ipn_url,
            expire_duration_seconds=max(300, int(window)),  # ZaloPay's minimum is 5 minutes
        )
        request.mac = zalopay.mac(self.key1, request.mac_data())
        answer = await self._post(http, f"{self.config.endpoint}/v2/create", request, zalopay.CreateResponse)
        if answer.return_code != zalopay.SUCCESS or not answer.order_url:
            raise GatewayRefused(f"ZaloPay {answer.sub_return_code}: {answer.sub_return_message}")
        return answer.order_url

    async def read_ipn(self, request: Request) -> Notice:
        try:
            callback = self._CALLBACK.decode(await request.body())
            if not zalopay.mac_matches(self.key2, callback.data, callback.mac):
                raise Forged("ZaloPay mac does not match")
            data = self._DATA.decode(callback.data)
        except msgspec.MsgspecError as exc:
            raise Forged(f"malformed callback: {exc}") from exc
        if data.app_id != self.config.app_id:
            raise Forged("callback for another app_id")
        # ZaloPay calls back only once the money is taken: every callback is a payment.
        return Notice(
            method=self.method,
            reference=data.app_trans_id,
            amount=Decimal(data.amount),
            paid=True,
            code=str(zalopay.SUCCESS),
            message="success",
            transaction_id=str(data.zp_trans_id),
            paid_at=from_epoch_ms(data.server_time),
        )

    def answer(self, outcome: Outcome) -> Response:
        return JSON(self._ANSWERS[outcome])

    def read_return(self, query: Mapping[str, str]) -> str:
        if not zalopay.mac_matches(
            self.key2, zalopay.redirect_data(query), query.get("checksum", "")
        ) or query.get("appid") != str(self.config.app_id):
            raise Forged("ZaloPay checksum does not match")
        return query.get("apptransid", "")

    async def query(self, http: httpx.AsyncClient, payment: Payment, now: datetime) -> Notice | None:
        assert payment.reference is not None
        request = zalopay.QueryRequest(app_id=self.config.app_id, app_trans_id=payment.reference)
        request.mac = zalopay.mac(self.key1, request.mac_data(self.key1))
        answer = await self._post(http, f"{self.config.endpoint}/v2/query", request, zalopay.QueryResponse)
        if answer.return_code not in (zalopay.SUCCESS, zalopay.FAILED):
            return None  # unpaid or processing
        return self._answered(
            payment,
            answer.return_code == zalopay.SUCCESS,
            answer.amount,
            answer.sub_return_code or answer.return_code,
            answer.return_message,
            answer.zp_trans_id,
            answer.server_time,
        )

    async def refund(
        self, http: httpx.AsyncClient, payment: Payment, refund: Refund, now: datetime
    ) -> RefundResult:
        request = zalopay.RefundRequest(
            m_refund_id=f"{refund.created_at.astimezone(VIETNAM):%y%m%d}_{self.config.app_id}_{refund.id.hex}",
            app_id=self.config.app_id,
            zp_trans_id=int(payment.transaction_id or 0),
            amount=whole_vnd(refund.amount),
            timestamp=epoch_ms(now),
            description=refund.reason or f"Hoan tien don hang {payment.order_number}",
        )
        request.mac = zalopay.mac(self.key1, request.mac_data())
        answer = await self._post(http, f"{self.config.endpoint}/v2/refund", request, zalopay.RefundResponse)
        if answer.return_code == zalopay.SUCCESS:
            return RefundResult("SUCCEEDED", str(answer.refund_id))
        if answer.return_code == zalopay.PROCESSING:
            return RefundResult("PENDING")
        return RefundResult(
            "FAILED", message=f"ZaloPay {answer.sub_return_code}: {answer.sub_return_message}"
        )
