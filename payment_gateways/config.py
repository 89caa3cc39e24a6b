"""Gateway credentials and endpoints, read once at start by svc_payment and by the dev sandbox.

Both processes need the same merchant credentials (one signs, the other verifies), so they are not
under one service's prefix:

    VNPAY_TMN_CODE, VNPAY_HASH_SECRET, VNPAY_PAYMENT_URL, VNPAY_API_URL
    MOMO_PARTNER_CODE, MOMO_ACCESS_KEY, MOMO_SECRET_KEY, MOMO_ENDPOINT
    ZALOPAY_APP_ID, ZALOPAY_KEY1, ZALOPAY_KEY2, ZALOPAY_ENDPOINT

In dev and test every value has a default pointing at the local sandbox (`service_url("sandbox")`);
elsewhere the secrets must be set. Secrets are `kit.settings.Secret`s: they never print themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Env, Secret

# Dev-only merchant credentials shared by svc_payment and the sandbox; worthless anywhere else.
_DEV = {
    "VNPAY_TMN_CODE": "SHOPDEV1",
    "VNPAY_HASH_SECRET": "dev-only-vnpay-hash-secret-0123456789",
    "MOMO_PARTNER_CODE": "MOMOSHOPDEV",
    "MOMO_ACCESS_KEY": "dev-momo-access-key",
    "MOMO_SECRET_KEY": "dev-only-momo-secret-key-0123456789",
    "ZALOPAY_APP_ID": "2554",
    "ZALOPAY_KEY1": "dev-only-zalopay-key1-0123456789",
    "ZALOPAY_KEY2": "dev-only-zalopay-key2-0123456789",
}
_SECRETS = ("VNPAY_HASH_SECRET", "MOMO_SECRET_KEY", "ZALOPAY_KEY1", "ZALOPAY_KEY2")


@dataclass(frozen=True, slots=True)
class VnpayConfig:
    tmn_code: str
    hash_secret: Secret
    payment_url: str  # the gateway page the buyer is sent to
    api_url: str  # querydr and refund


@dataclass(frozen=True, slots=True)
class MomoConfig:
    partner_code: str
    access_key: str
    secret_key: Secret
    endpoint: str  # base of /v2/gateway/api/{create,query,refund}


@dataclass(frozen=True, slots=True)
class ZalopayConfig:
    app_id: int
    key1: Secret
    key2: Secret
    endpoint: str  # base of /v2/{create,query,refund}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    vnpay: VnpayConfig
    momo: MomoConfig
    zalopay: ZalopayConfig


def read(env: Env) -> GatewayConfig:
    """The gateways' configuration, from the variables above."""
    missing = [name for name in _SECRETS if not env.text(name)]
    if missing and not env.is_dev:
        raise ValueError(f"payment gateway secrets must be set outside dev and test: {', '.join(missing)}")

    def value(name: str) -> str:
        return env.text(name, _DEV[name])

    sandbox = env.service_url("sandbox")
    return GatewayConfig(
        vnpay=VnpayConfig(
            tmn_code=value("VNPAY_TMN_CODE"),
            hash_secret=env.secret("VNPAY_HASH_SECRET", _DEV["VNPAY_HASH_SECRET"]),
            payment_url=env.text("VNPAY_PAYMENT_URL", f"{sandbox}/paymentv2/vpcpay.html"),
            api_url=env.text("VNPAY_API_URL", f"{sandbox}/merchant_webapi/api/transaction"),
        ),
        momo=MomoConfig(
            partner_code=value("MOMO_PARTNER_CODE"),
            access_key=value("MOMO_ACCESS_KEY"),
            secret_key=env.secret("MOMO_SECRET_KEY", _DEV["MOMO_SECRET_KEY"]),
            endpoint=env.text("MOMO_ENDPOINT", sandbox).rstrip("/"),
        ),
        zalopay=ZalopayConfig(
            app_id=env.integer("ZALOPAY_APP_ID", int(_DEV["ZALOPAY_APP_ID"])),
            key1=env.secret("ZALOPAY_KEY1", _DEV["ZALOPAY_KEY1"]),
            key2=env.secret("ZALOPAY_KEY2", _DEV["ZALOPAY_KEY2"]),
            endpoint=env.text("ZALOPAY_ENDPOINT", sandbox).rstrip("/"),
        ),
    )
