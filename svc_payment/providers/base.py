"""What every gateway's merchant side does (open a session, read its IPN, answer it, query, refund),
the errors it raises, and the HTTP call they all make to their gateway."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar, TypeVar

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from svc_payment.config import PaymentConfig
from svc_payment.ledger import Notice, Outcome, Payment, Refund, RefundResult

T = TypeVar("T")


class Forged(Exception):
    """A notice whose signature does not match, or that is not the gateway's shape at all."""


class GatewayUnavailable(Exception):
    """No usable answer from the gateway (down, timed out, unreadable, badly signed)."""


class GatewayRefused(Exception):
    """The gateway answered, and said no."""


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
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
            paid_at=from_epoch_ms(at_ms) if at_ms else None,
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
