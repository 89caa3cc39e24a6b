"""svc_product's own settings (`PRODUCT_*` variables), read once at start beside kit's."""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Env, OwnSettings


@dataclass(frozen=True, slots=True)
class ProductConfig(OwnSettings):
    """Where svc_inventory's gRPC server answers the detail's stock, and how long it may take
    (svc_product.stock);
    whether searches, facets and suggestions come from the in-process index (svc_product.index)."""

    inventory_target: str  # host:port
    stock_ttl: float  # seconds a stock figure is served before it is refreshed
    stock_wait: float  # seconds a detail waits for a first look
    inventory_timeout: float  # seconds a call to svc_inventory may take
    # On by default (PRODUCT_SEARCH_INDEX=0: PostgreSQL answers every search): a write costs each process
    # a read of the products it changed (svc_product.index), not of the whole catalog.
    search_index: bool

    @property
    def follow_every(self) -> float:
        """How often the `follow` job looks (rarely while there is no index to keep current)."""
        return 0.1 if self.search_index else 3600.0

    @classmethod
    def read(cls, env: Env) -> ProductConfig:
        return cls(
            inventory_target=env.text("PRODUCT_INVENTORY_GRPC_URL", env.grpc_target("inventory")),
            stock_ttl=env.number("PRODUCT_STOCK_TTL", 5, positive=True),
            stock_wait=env.number("PRODUCT_STOCK_WAIT", 0.05, positive=True),
            inventory_timeout=env.number("PRODUCT_INVENTORY_TIMEOUT", 0.15, positive=True),
            search_index=env.flag("PRODUCT_SEARCH_INDEX", True),
        )
