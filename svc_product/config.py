"""svc_product's own settings (`PRODUCT_*` variables), read once at start beside kit's."""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Env, OwnSettings


@dataclass(frozen=True, slots=True)
class ProductConfig(OwnSettings):
    """Where svc_inventory answers the detail's stock, and how long it may take (svc_product.stock)."""

    inventory_url: str
    stock_ttl: float  # seconds a stock figure is served before it is refreshed
    stock_wait: float  # seconds a detail waits for a first look
    inventory_timeout: float  # seconds a call to svc_inventory may take

    @classmethod
    def read(cls, env: Env) -> ProductConfig:
        return cls(
            inventory_url=env.text("PRODUCT_INVENTORY_URL", env.service_url("inventory")),
            stock_ttl=env.number("PRODUCT_STOCK_TTL", 5, positive=True),
            stock_wait=env.number("PRODUCT_STOCK_WAIT", 0.05, positive=True),
            inventory_timeout=env.number("PRODUCT_INVENTORY_TIMEOUT", 0.15, positive=True),
        )
