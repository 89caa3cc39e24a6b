"""The merchant side of each gateway (one module each, over `base`): open a session, read its IPN,
answer it, query, refund.

The protocols themselves (shapes, signatures) live in `payment_gateways`; these modules add the
I/O: HTTP calls to the gateway with a timeout, and the HTTP answers each gateway expects. `Providers`
is the process's set of them with its one HTTP client (`PROVIDERS`, opened at start, closed at stop).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx

from kit.app import Deps, Resource
from kit.errors import BusinessRuleViolation, NotFound, ServiceUnavailable
from svc_payment import store
from svc_payment.config import PaymentConfig
from svc_payment.ledger import Notice, Payment, Refund, RefundResult
from svc_payment.providers.base import Forged, Gateway, GatewayRefused, GatewayUnavailable
from svc_payment.providers.momo import Momo
from svc_payment.providers.vnpay import Vnpay
from svc_payment.providers.zalopay import Zalopay

__all__ = ["PROVIDERS", "Forged", "Gateway", "Providers"]

log = logging.getLogger(__name__)


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


@contextlib.asynccontextmanager
async def _providers(deps: Deps) -> AsyncIterator[Providers]:
    config = PaymentConfig.of(deps.settings)
    providers = Providers(config, httpx.AsyncClient(timeout=config.gateway_timeout))
    try:
        yield providers
    finally:
        await providers.http.aclose()


PROVIDERS = Resource("providers", _providers)
