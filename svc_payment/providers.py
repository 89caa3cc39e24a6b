"""The merchant side of each gateway: open a session, read its IPN, answer it, query, refund.

The protocols themselves (shapes, signatures) live in `svc_payment.gateways`; this module adds the
I/O: HTTP calls to the gateway with a timeout, and the HTTP answers each gateway expects. `Providers`
is the process's set of them with its one HTTP client (`deps.state["providers"]`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar, TypeVar

import asyncpg
import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kit.app import Deps
from kit.errors import BusinessRuleViolation, ErrorBody, NotFound, ServiceUnavailable
from kit.http import JSON
from svc_payment import store
from svc_payment.config import PaymentConfig
from svc_payment.config import load as load_config
from svc_payment.gateways import momo, vnpay, zalopay
from svc_payment.gateways.common import VIETNAM, whole_vnd
from svc_payment.gateways.config import MomoConfig, VnpayConfig, ZalopayConfig
from svc_payment.ledger import Notice, Outcome, Payment, Refund, RefundResult

log = logging.getLogger(__name__)
T = TypeVar("T")


class Forged(Exception):
    """A notice whose signature does not match, or that is not the gateway's shape at all."""


class GatewayUnavailable(Exception):
    """No usable answer from the gateway (down, timed out, unreadable, badly signed)."""


class GatewayRefused(Exception):
    """The gateway answered, and said no."""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Gateway:
    """What every gateway does; each subclass speaks its own protocol."""

    method: ClassVar[str]

    def __init__(self, config: PaymentConfig) -> None:
        self.timeout = config.gateway_timeout
        self.server_ip = config.server_ip
        self.ipn_url = f"{config.public_url}/api/payments/{self.method}/ipn"
        self.return_url = f"{config.public_url}/api/payments/{self.method}/return"

    def reference(self, payment: Payment, now: datetime) -> str:
        """What the gateway will know the payment by."""
        return payment.id.hex

    def _answered(
        self, payment: Payment, paid: bool, amount: int, code: object, message: str, trans_id: int, at_ms: int
    ) -> Notice:
        """A query's final answer (MoMo, ZaloPay): amounts in whole VND, times in epoch milliseconds."""
        assert payment.reference is not None
        return Notice(
            method=self.method,
            reference=payment.reference,
            amount=Decimal(amount) if paid else payment.amount,
            paid=paid,
            code=str(code),
            message=message,
            transaction_id=str(trans_id) if trans_id else None,
            paid_at=_from_ms(at_ms) if at_ms else None,
        )

    async def _post(self, http: httpx.AsyncClient, url: str, body: msgspec.Struct, answer: type[T]) -> T:
        try:
            response = await http.post(
                url,
                content=msgspec.json.encode(body),
                headers={"content-type": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{self.method} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise GatewayUnavailable(f"{self.method} answered HTTP {response.status_code}")
        try:
            return msgspec.json.decode(response.content, type=answer, strict=False)
        except msgspec.MsgspecError as exc:
            raise GatewayUnavailable(f"{self.method} answer unreadable: {exc}") from exc

    async def open_session(
        self, http: httpx.AsyncClient, payment: Payment, reference: str, client_ip: str, now: datetime
    ) -> str:
        """The URL of the gateway page where the buyer pays."""
        raise NotImplementedError

    async def read_ipn(self, request: Request) -> Notice:
        raise NotImplementedError

    def answer(self, outcome: Outcome) -> Response:
        """The answer this gateway expects for an IPN that had `outcome`."""
        raise NotImplementedError

    def read_return(self, query: Mapping[str, str]) -> str:
        """The reference of a signature-checked return (redirect) URL."""
        raise NotImplementedError

    async def query(self, http: httpx.AsyncClient, payment: Payment, now: datetime) -> Notice | None:
        """The gateway's final word on an opened session, or None while it has none."""
        raise NotImplementedError

    async def refund(
        self, http: httpx.AsyncClient, payment: Payment, refund: Refund, now: datetime
    ) -> RefundResult:
        raise NotImplementedError


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
            paid_at=_from_ms(ipn.response_time),
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
            app_time=_ms(now),
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
            paid_at=_from_ms(data.server_time),
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
            timestamp=_ms(now),
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


class Providers:
    """The process's gateways and the HTTP client they share."""

    def __init__(self, config: PaymentConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        gateways: tuple[Gateway, ...] = (
            Vnpay(config, config.gateways.vnpay),
            Momo(config, config.gateways.momo),
            Zalopay(config, config.gateways.zalopay),
        )
        self._by_method = {gateway.method: gateway for gateway in gateways}

    def get(self, method: str) -> Gateway:
        try:
            return self._by_method[method]
        except KeyError:
            raise NotFound(f"Unknown payment method {method!r}") from None

    async def open_session(self, pool: asyncpg.Pool, payment_id: uuid.UUID, client_ip: str) -> str:
        """The gateway page of a pending payment, opening the gateway session on the first call.

        The row stays locked while the gateway answers, so two clicks never open two sessions.
        """
        async with pool.acquire() as conn, conn.transaction():
            payment = Payment.of(await conn.fetchrow(store.PAYMENT_BY_ID_FOR_UPDATE, payment_id))
            now = datetime.now(UTC)
            payment.check_payable(now)
            if payment.gateway_url is not None:
                return payment.gateway_url
            gateway = self.get(payment.method)
            reference = gateway.reference(payment, now)
            try:
                url = await gateway.open_session(self.http, payment, reference, client_ip, now)
            except GatewayUnavailable as exc:
                log.warning("gateway session not opened", extra={"error": str(exc)})
                raise ServiceUnavailable("The payment gateway is unavailable, please retry") from None
            except GatewayRefused as exc:
                raise BusinessRuleViolation(f"The payment gateway refused the payment: {exc}") from None
            await conn.execute(store.OPEN_SESSION, payment.id, reference, url, now, client_ip)
            return url

    async def query(self, payment: Payment) -> Notice | None:
        """The gateway's final word on `payment`, or None (none yet, or the gateway did not answer)."""
        try:
            return await self.get(payment.method).query(self.http, payment, datetime.now(UTC))
        except GatewayUnavailable as exc:
            log.warning("gateway query failed", extra={"paymentId": str(payment.id), "error": str(exc)})
            return None

    async def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        """Ask the gateway; without an answer the refund stays PENDING and is sent again later."""
        try:
            return await self.get(payment.method).refund(self.http, payment, refund, datetime.now(UTC))
        except GatewayUnavailable as exc:
            log.warning("gateway refund unanswered", extra={"refundId": str(refund.id), "error": str(exc)})
            return RefundResult("PENDING", message=str(exc))


async def start(deps: Deps) -> None:
    """`Service.on_start`: the process's Providers (the reconciliation job closes them when it stops)."""
    config = load_config(deps.settings)
    deps.state["providers"] = Providers(config, httpx.AsyncClient(timeout=config.gateway_timeout))


def of(deps: Deps) -> Providers:
    providers: Providers = deps.state["providers"]
    return providers
