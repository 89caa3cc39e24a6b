"""svc_discount's own settings (`DISCOUNT_*` variables), read once at start beside kit's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kit.settings import Env, OwnSettings


@dataclass(frozen=True, slots=True)
class DiscountConfig(OwnSettings):
    # A usage RESERVED this long is freed: its order's outcome never reached us (the order's 15-minute
    # payment window and 10 minutes' grace by default).
    usage_hold: timedelta
    # How often the held usages are looked at.
    usage_sweep_seconds: float

    @classmethod
    def read(cls, env: Env) -> DiscountConfig:
        return cls(
            usage_hold=timedelta(seconds=env.number("DISCOUNT_USAGE_HOLD_SECONDS", 1500, positive=True)),
            usage_sweep_seconds=env.number("DISCOUNT_USAGE_SWEEP_SECONDS", 60, positive=True),
        )
