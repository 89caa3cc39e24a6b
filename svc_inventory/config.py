"""svc_inventory's own settings (`INVENTORY_*` variables), read once at start beside kit's."""

from __future__ import annotations

from dataclasses import dataclass

from kit.settings import Env, OwnSettings


@dataclass(frozen=True, slots=True)
class InventoryConfig(OwnSettings):
    # How long a reservation holds its stock unless the checkout says otherwise.
    hold_seconds: float
    # How often Redis is rebuilt from PostgreSQL whatever happened (drift repair).
    reconcile_seconds: float

    @classmethod
    def read(cls, env: Env) -> InventoryConfig:
        return cls(
            hold_seconds=env.number("INVENTORY_RESERVATION_SECONDS", 900, positive=True),
            reconcile_seconds=env.number("INVENTORY_RECONCILE_SECONDS", 30, positive=True),
        )
