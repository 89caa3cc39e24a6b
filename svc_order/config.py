"""svc_order's own settings (`ORDER_*` variables), read once at start beside kit's (`Service.settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kit import settings


@dataclass(frozen=True, slots=True)
class OrderConfig(settings.OwnSettings):
    """Everything svc_order reads from its environment besides kit's settings."""

    # Where the catalog's batch endpoint and the gRPC servers are.
    product_url: str
    inventory_target: str
    discount_target: str
    # Seconds a downstream call may take (each call and each compensation has its own deadline).
    deadline: float
    # Seconds a PENDING order waits for its payment; inventory holds the stock `hold_grace` longer, so the
    # sweeper always cancels (and releases) before the hold could expire on its own.
    payment_window: int
    hold_grace: int
    sweep_every: float
    idempotency_hours: int
    # A checkout's intent still open this long past the saga's deadline is taken for a dead checkout and
    # compensated by the recovery job, which looks every `intent_recovery_every` seconds.
    intent_grace: float
    intent_recovery_every: float
    # Shipping: free from this amount (subtotal after discount), else the flat fee. VND.
    free_shipping_from: Decimal
    shipping_fee: Decimal

    @classmethod
    def read(cls, env: settings.Env) -> OrderConfig:
        return cls(
            product_url=env.text("ORDER_PRODUCT_URL", env.service_url("product")).rstrip("/"),
            inventory_target=env.text("ORDER_INVENTORY_GRPC_URL", env.grpc_target("inventory")),
            discount_target=env.text("ORDER_DISCOUNT_GRPC_URL", env.grpc_target("discount")),
            deadline=env.number("ORDER_DEADLINE_SECONDS", 2),
            payment_window=env.integer("ORDER_PAYMENT_WINDOW_SECONDS", 900),
            hold_grace=env.integer("ORDER_HOLD_GRACE_SECONDS", 300),
            sweep_every=env.number("ORDER_SWEEP_SECONDS", 10),
            idempotency_hours=env.integer("ORDER_IDEMPOTENCY_HOURS", 24),
            intent_grace=env.number("ORDER_INTENT_GRACE_SECONDS", 10),
            intent_recovery_every=env.number("ORDER_INTENT_RECOVERY_SECONDS", 5),
            free_shipping_from=env.decimal("ORDER_FREE_SHIPPING_FROM", Decimal(500000)),
            shipping_fee=env.decimal("ORDER_SHIPPING_FEE", Decimal(30000)),
        )

    @property
    def intent_overdue(self) -> float:
        """Seconds after which an open intent's checkout is dead: its calls' deadline plus the grace."""
        return self.deadline + self.intent_grace

    def shipping_for(self, goods: Decimal) -> Decimal:
        """The shipping fee of an order whose goods cost `goods` after discount."""
        return Decimal(0) if goods >= self.free_shipping_from else self.shipping_fee
