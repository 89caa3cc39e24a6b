"""svc_payment's own settings (`PAYMENT_*`) and the gateways' configuration, read once at start beside
kit's (`Service.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Env, OwnSettings
from payment_gateways import config as gateways


@dataclass(frozen=True, slots=True)
class PaymentConfig(OwnSettings):
    gateways: gateways.GatewayConfig
    public_url: str  # base of the IPN and return URLs the gateways are given
    server_ip: str  # vnp_IpAddr of our own querydr and refund requests
    gateway_timeout: float
    pay_wait: float  # how long GET /pay waits for a payment whose order.created is in flight
    reconcile_after: float  # seconds a session may stay unsettled before the gateway is asked
    reconcile_every: float
    refund_retry_after: float

    @classmethod
    def read(cls, env: Env) -> PaymentConfig:
        return cls(
            gateways=gateways.read(env),
            public_url=env.public_url.rstrip("/"),
            server_ip=env.text("PAYMENT_SERVER_IP", "127.0.0.1"),
            gateway_timeout=env.number("PAYMENT_GATEWAY_TIMEOUT_SECONDS", 10.0),
            pay_wait=env.number("PAYMENT_PAY_WAIT_SECONDS", 2.0),
            reconcile_after=60 * env.number("PAYMENT_RECONCILE_AFTER_MINUTES", 5.0),
            reconcile_every=env.number("PAYMENT_RECONCILE_SECONDS", 30.0),
            refund_retry_after=env.number("PAYMENT_REFUND_RETRY_SECONDS", 60.0),
        )
