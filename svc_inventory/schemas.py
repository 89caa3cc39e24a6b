"""Requests and responses of svc_inventory's REST API, and the stock line its flows pass around."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from kit.http import Model

Quantity = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
Threshold = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]

MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000


class Line(msgspec.Struct, frozen=True):
    """One product (or variant) and a quantity; `variant_id` is `store.PRODUCT_LEVEL` for none."""

    product_id: uuid.UUID
    variant_id: uuid.UUID
    quantity: int


class Level(Model):
    product_id: uuid.UUID
    available: int
    reserved: int
    on_hand: int
    low_stock_threshold: int
    updated_at: datetime
    variant_id: uuid.UUID | None = None


class SetStock(Model):
    """`PUT /api/inventory/{productId}`: the on-hand quantity and the low-stock threshold."""

    quantity: Quantity
    low_stock_threshold: Threshold = 10
    variant_id: uuid.UUID | None = None
