"""Requests and responses of svc_payment, camelCase on the wire; money as JSON numbers."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from kit.http import Model


class PaymentView(Model):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    status: str
    amount: float
    refunded_amount: float
    currency: str
    method: str
    payment_url: str
    transaction_id: str | None
    paid_at: datetime | None
    created_at: datetime


class RefundRequest(Model):
    """An empty body (or no `amount`) refunds everything not refunded yet."""

    amount: Decimal | None = None
    reason: Annotated[str, msgspec.Meta(max_length=255)] = ""

    def __post_init__(self) -> None:
        if self.amount is not None:
            if self.amount <= 0:
                raise ValueError("amount: must be greater than 0")
            if self.amount != self.amount.quantize(Decimal("0.01")):
                raise ValueError("amount: at most 2 decimals")
        self.reason = self.reason.strip()


class RefundView(Model):
    refund_id: uuid.UUID
    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: float
    status: str
    payment_status: str
    refunded_amount: float
    message: str = ""


class ReturnView(Model):
    """What the buyer sees when the gateway sends them back: read from our records, never changed."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    order_number: str
    method: str
    amount: float
    status: str
    paid: bool
