"""svc_payment's own knobs (`PAYMENT_*`, through kit settings) and the gateways' configuration."""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Settings
from payment_gateways import config as gateways


@dataclass(frozen=True, slots=True)
class PaymentConfig:
    gateways: gateways.GatewayConfig
    public_url: str  # base of the IPN and return URLs the gateways are given
    server_ip: str  # vnp_IpAddr of our own querydr and refund requests
    gateway_timeout: float
    pay_wait: float  # how long GET /pay waits for a payment whose order.created is in flight
    reconcile_after: float  # seconds a session may stay unsettled before the gateway is asked
    reconcile_every: float
    refund_retry_after: float


def _seconds(settings: Settings, name: str, default: float) -> float:
    raw = settings.extra.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None


def load(settings: Settings) -> PaymentConfig:
    return PaymentConfig(
        gateways=gateways.load(),
        public_url=settings.public_url.rstrip("/"),
        server_ip=settings.extra.get("PAYMENT_SERVER_IP", "127.0.0.1"),
        gateway_timeout=_seconds(settings, "PAYMENT_GATEWAY_TIMEOUT_SECONDS", 10.0),
        pay_wait=_seconds(settings, "PAYMENT_PAY_WAIT_SECONDS", 2.0),
        reconcile_after=60 * _seconds(settings, "PAYMENT_RECONCILE_AFTER_MINUTES", 5.0),
        reconcile_every=_seconds(settings, "PAYMENT_RECONCILE_SECONDS", 30.0),
        refund_retry_after=_seconds(settings, "PAYMENT_REFUND_RETRY_SECONDS", 60.0),
    )
