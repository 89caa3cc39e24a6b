"""What a discount takes off an order: pure functions over a discount row, the subtotal and the lines."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: uuid.UUID
    category_id: uuid.UUID | None
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class Verdict:
    """`reason` is empty when the discount applies; `amount` is then what it takes off."""

    amount: Decimal
    reason: str

    @property
    def valid(self) -> bool:
        return not self.reason


def _refused(reason: str) -> Verdict:
    return Verdict(ZERO, reason)


def _window_reason(discount: Mapping[str, Any], now: datetime) -> str:
    if not discount["active"]:
        return "inactive"
    if discount["starts_at"] and now < discount["starts_at"]:
        return "not_started"
    if discount["ends_at"] and now >= discount["ends_at"]:
        return "expired"
    if discount["campaign_id"] is not None:
        # A campaign (a flash sale) bounds its discounts by its own switch and window.
        if not discount["campaign_active"]:
            return "campaign_inactive"
        if not discount["campaign_starts_at"] <= now < discount["campaign_ends_at"]:
            return "campaign_not_running"
    return ""


def _eligible(discount: Mapping[str, Any], subtotal: Decimal, lines: Sequence[OrderLine]) -> Decimal | None:
    """The part of the order the discount's scope covers; None when that needs lines we were not given."""
    scope = discount["scope"]
    if scope == "ALL":
        return subtotal
    if not lines:
        return None
    wanted = set(discount["category_ids"] if scope == "CATEGORIES" else discount["product_ids"])
    return sum(
        (
            line.unit_price * line.quantity
            for line in lines
            if (line.category_id if scope == "CATEGORIES" else line.product_id) in wanted
        ),
        ZERO,
    )


def evaluate(
    discount: Mapping[str, Any],
    subtotal: Decimal,
    lines: Sequence[OrderLine],
    now: datetime,
    user_uses: int | None,
) -> Verdict:
    """Whether `discount` applies to this order and how much it takes off (never more than it costs).

    `user_uses` is how many times the caller already used it (None: caller unknown, per-user limit
    not checked).
    """
    if reason := _window_reason(discount, now):
        return _refused(reason)
    if subtotal < discount["min_subtotal"]:
        return _refused("min_subtotal_not_met")
    limit = discount["usage_limit"]
    if limit is not None and discount["used_count"] >= limit:
        return _refused("usage_limit_reached")
    per_user = discount["per_user_limit"]
    if per_user is not None and user_uses is not None and user_uses >= per_user:
        return _refused("user_limit_reached")
    eligible = _eligible(discount, subtotal, lines)
    if eligible is None:
        return _refused("lines_required")
    if eligible <= 0:
        return _refused("not_applicable")
    if discount["kind"] == "PERCENTAGE":
        amount = (eligible * discount["value"] / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        amount = discount["value"]
    if discount["max_discount"] is not None:
        amount = min(amount, discount["max_discount"])
    return Verdict(min(amount, eligible), "")
