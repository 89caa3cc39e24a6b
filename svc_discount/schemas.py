"""Requests and responses of svc_discount, camelCase on the wire; money in VND, at most 2 decimals.

Money is decoded as an exact Decimal and answered as a JSON number (contract section 2).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from kit.http import Model

Kind = Literal["PERCENTAGE", "FIXED_AMOUNT"]
Scope = Literal["ALL", "CATEGORIES", "PRODUCTS"]
CampaignKind = Literal["STANDARD", "FLASH_SALE"]
Code = Annotated[str, msgspec.Meta(min_length=3, max_length=40)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
Ids = Annotated[list[uuid.UUID], msgspec.Meta(max_length=1000)]

MAX_MONEY = Decimal("9999999999999999.99")
_CODE = re.compile(r"^[A-Za-z0-9_-]+$")


def money(field: str, value: Decimal | None) -> None:
    """Refuse what numeric(18,2) cannot hold exactly: negatives, more than 2 decimals, too large."""
    if value is None:
        return
    if not value.is_finite() or value < 0 or value > MAX_MONEY:
        raise ValueError(f"{field}: must be between 0 and {MAX_MONEY}")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{field}: at most 2 decimals")


class DiscountIn(Model):
    """A coupon (typed by customers) or an automatic rule (`autoApply`), as an Admin writes it."""

    code: Code
    name: Name
    kind: Kind
    value: Decimal
    min_subtotal: Decimal = Decimal(0)
    max_discount: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: Limit | None = None
    per_user_limit: Limit | None = None
    scope: Scope = "ALL"
    category_ids: Ids = msgspec.field(default_factory=list)
    product_ids: Ids = msgspec.field(default_factory=list)
    auto_apply: bool = False
    active: bool = True
    campaign_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        self.code = self.code.strip()
        if not _CODE.match(self.code):
            raise ValueError("code: letters, digits, '-' and '_' only")
        self.name = self.name.strip()
        if not self.name:
            raise ValueError("name: must not be blank")
        money("value", self.value)
        money("minSubtotal", self.min_subtotal)
        money("maxDiscount", self.max_discount)
        if self.value <= 0:
            raise ValueError("value: must be positive")
        if self.kind == "PERCENTAGE" and self.value > 100:
            raise ValueError("value: a percentage is at most 100")
        if self.max_discount is not None and self.max_discount <= 0:
            raise ValueError("maxDiscount: must be positive")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("endsAt: must be after startsAt")
        if self.scope == "CATEGORIES" and not self.category_ids:
            raise ValueError("categoryIds: required for scope CATEGORIES")
        if self.scope == "PRODUCTS" and not self.product_ids:
            raise ValueError("productIds: required for scope PRODUCTS")


class DiscountPatch(Model):
    """PATCH: only the fields given change; the result must still be a valid DiscountIn."""

    code: Code | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: Kind | msgspec.UnsetType = msgspec.UNSET
    value: Decimal | msgspec.UnsetType = msgspec.UNSET
    min_subtotal: Decimal | msgspec.UnsetType = msgspec.UNSET
    max_discount: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    starts_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    ends_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    usage_limit: Limit | msgspec.UnsetType | None = msgspec.UNSET
    per_user_limit: Limit | msgspec.UnsetType | None = msgspec.UNSET
    scope: Scope | msgspec.UnsetType = msgspec.UNSET
    category_ids: Ids | msgspec.UnsetType = msgspec.UNSET
    product_ids: Ids | msgspec.UnsetType = msgspec.UNSET
    auto_apply: bool | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    campaign_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET


class Discount(Model):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    value: float
    min_subtotal: float
    max_discount: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_user_limit: int | None
    used_count: int
    scope: str
    category_ids: list[uuid.UUID]
    product_ids: list[uuid.UUID]
    auto_apply: bool
    active: bool
    campaign_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class CampaignIn(Model):
    name: Name
    starts_at: datetime
    ends_at: datetime
    kind: CampaignKind = "STANDARD"
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    active: bool = True

    def __post_init__(self) -> None:
        self.name = self.name.strip()
        if not self.name:
            raise ValueError("name: must not be blank")
        if self.ends_at <= self.starts_at:
            raise ValueError("endsAt: must be after startsAt")


class CampaignPatch(Model):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    starts_at: datetime | msgspec.UnsetType = msgspec.UNSET
    ends_at: datetime | msgspec.UnsetType = msgspec.UNSET
    kind: CampaignKind | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class Campaign(Model):
    id: uuid.UUID
    name: str
    description: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    active: bool
    discount_count: int
    created_at: datetime
    updated_at: datetime


class Validation(Model):
    """`GET /api/discounts/{code}/validate`: what the code takes off this subtotal."""

    valid: bool
    discount_amount: float
    reason: str
    code: str


class Usage(Model):
    order_id: uuid.UUID
    discount_id: uuid.UUID
    code: str
    user_id: uuid.UUID
    amount: float
    state: str
    created_at: datetime
    updated_at: datetime
