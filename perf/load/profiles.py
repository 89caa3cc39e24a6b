"""Load profiles: how hard each kind of visitor arrives and for how long.

Rates are arrivals a second, open loop: a browser arrival is one page view (one request), a buyer
arrival one whole shopping session (about ten requests: cart, checkout, payment, orders), a staff
arrival one edit or admin read. The mixes choose which kinds run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

SCENARIOS = ("browser", "buyer", "staff")
MIXES = {"mix": SCENARIOS, "catalog": ("browser", "staff"), "checkout": ("buyer",)}


@dataclass(frozen=True)
class Profile:
    name: str
    duration: float
    rates: dict[str, float]

    def with_mix(self, mix: str) -> Profile:
        return replace(self, rates={k: v for k, v in self.rates.items() if k in MIXES[mix]})

    def scaled(self, factor: float) -> Profile:
        return replace(self, rates={k: v * factor for k, v in self.rates.items()})

    def with_rates(self, overrides: dict[str, float]) -> Profile:
        unknown = set(overrides) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenario {sorted(unknown)}: rates are set for {', '.join(SCENARIOS)}")
        return replace(self, rates={**self.rates, **overrides})

    @property
    def buyers(self) -> int:
        """Accounts in the buyer pool: a session lasts well under a second at these rates; the margin
        covers sessions that slow down under load (each buyer runs one session at a time)."""
        return max(20, math.ceil(self.rates.get("buyer", 0) * 10))


PROFILES = {
    "smoke": Profile("smoke", 30, {"browser": 40, "buyer": 2, "staff": 0.5}),
    "standard": Profile("standard", 180, {"browser": 150, "buyer": 8, "staff": 1}),
    "peak": Profile("peak", 120, {"browser": 400, "buyer": 20, "staff": 2}),
}


def parse_rates(text: str) -> dict[str, float]:
    """`browser=100,buyer=5` (commas or spaces) as a dict; empty text is no override."""
    rates = {}
    for item in text.replace(",", " ").split():
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: a rate is written scenario=arrivals per second")
        rates[name] = float(value)
    return rates


def format_rates(rates: dict[str, float]) -> str:
    return ",".join(f"{name}={rate:g}" for name, rate in rates.items())
