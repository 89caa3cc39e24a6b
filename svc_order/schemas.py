"""Requests and responses of svc_order, camelCase on the wire.

Money is a Decimal inside (numeric(18,2) in SQL) and a JSON number with at most 2 decimals on the wire
(contract section 2): response Structs carry it as float, which prints the same 2-decimal value.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kit.http import Model

PaymentMethod = Literal["vnpay", "momo", "zalopay"]
Status = Literal[
    "PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED", "FAILED", "REFUNDED"
]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=99)]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=500)]
DiscountCode = Annotated[str, msgspec.Meta(max_length=40)]

MAX_LINE_QUANTITY = 99
MAX_CART_LINES = 100
_PHONE = re.compile(r"^\+?[0-9][0-9 .\-()]{5,30}$")


def _required(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field}: must not be blank")
    return value


# -- cart ------------------------------------------------------------------------------------------------


class AddItem(Model):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = None
    quantity: Quantity = 1


class SetQuantity(Model):
    """0 removes the line."""

    quantity: Annotated[int, msgspec.Meta(ge=0, le=MAX_LINE_QUANTITY)]


class CartLine(Model):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    quantity: int
    # Null (and `available` false) when the product is no longer sold: it cannot be checked out.
    product_name: str | None
    variant_name: str | None
    image_url: str | None
    unit_price: float | None
    line_total: float | None
    available: bool
    added_at: datetime


class Cart(Model):
    items: list[CartLine]
    total_quantity: int
    # Of the available lines, at current prices; shipping by the shop's rule, before any discount code.
    subtotal: float
    shipping_fee: float
    total: float
    currency: str = "VND"


# -- checkout ----------------------------------------------------------------------------------------------


class ShippingAddress(Model):
    full_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    phone: Annotated[str, msgspec.Meta(min_length=6, max_length=32)]
    line1: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    country: Annotated[str, msgspec.Meta(min_length=2, max_length=100)]
    line2: Text | None = None
    ward: Text | None = None
    district: Text | None = None
    postal_code: Annotated[str, msgspec.Meta(max_length=20)] | None = None

    def __post_init__(self) -> None:
        self.full_name = _required("fullName", self.full_name)
        self.line1 = _required("line1", self.line1)
        self.city = _required("city", self.city)
        self.country = _required("country", self.country)
        self.phone = self.phone.strip()
        if not _PHONE.match(self.phone):
            raise ValueError("phone: must be a phone number")


class CheckoutRequest(Model):
    shipping_address: ShippingAddress
    payment_method: PaymentMethod
    discount_code: DiscountCode | None = None

    def __post_init__(self) -> None:
        # A blank code is no code: the best automatic discount applies, as without one.
        if self.discount_code is not None:
            self.discount_code = self.discount_code.strip() or None


class Placed(Model):
    """201 of `POST /api/orders/checkout` (and what a replay of its Idempotency-Key answers)."""

    order_id: uuid.UUID
    order_number: str
    status: Status
    subtotal: float
    discount_amount: float
    shipping_fee: float
    total_amount: float
    currency: str
    discount_code: str | None
    payment_method: PaymentMethod
    payment_url: str
    expires_at: datetime


# -- orders ------------------------------------------------------------------------------------------------


class OrderItem(Model):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    product_name: str
    variant_name: str | None
    product_image: str | None
    seller_id: uuid.UUID | None
    unit_price: float
    quantity: int
    total_price: float


class HistoryEntry(Model):
    status: Status
    note: str
    at: datetime


class OrderSummary(Model):
    """One item of `GET /api/orders`."""

    id: uuid.UUID
    order_number: str
    status: Status
    payment_status: str
    payment_method: PaymentMethod
    total_amount: float
    item_count: int
    created_at: datetime
    updated_at: datetime


class Order(Model):
    """`GET /api/orders/{id}`: the order with its items and the statuses it went through."""

    id: uuid.UUID
    order_number: str
    user_id: uuid.UUID
    status: Status
    payment_status: str
    payment_method: PaymentMethod
    currency: str
    subtotal: float
    discount_amount: float
    discount_code: str | None
    shipping_fee: float
    total_amount: float
    item_count: int
    shipping_address: ShippingAddress
    items: list[OrderItem]
    history: list[HistoryEntry]
    # Where to pay while PENDING, else null.
    payment_url: str | None
    expires_at: datetime
    paid_at: datetime | None
    transaction_id: str | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime


class SellerOrder(Model):
    """One item of `GET /api/orders/seller`: an order with only the seller's own lines."""

    id: uuid.UUID
    order_number: str
    status: Status
    shipping_address: ShippingAddress
    items: list[OrderItem]
    seller_total: float
    created_at: datetime


class CancelRequest(Model):
    reason: Note = ""


class StatusChange(Model):
    status: Status
    note: Note = ""
