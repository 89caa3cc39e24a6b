"""VNPay 2.1.0: the signed payment URL, the IPN, and the querydr and refund API (HMAC-SHA512).

- Payment URL and IPN/return: `vnp_SecureHash` = HMAC-SHA512(hash secret, data), where data is every
  `vnp_` parameter except `vnp_SecureHash` and `vnp_SecureHashType`, sorted by name and form-encoded
  (`key=value&...`, spaces as `+`) the way VNPay's Java reference encodes them (`URLEncoder`).
- querydr and refund (POST JSON to the transaction API): the hash is over the request's fields joined
  by `|` in the documented order; VNPay signs its answers the same way.
- Amounts are VND times 100, dates `yyyyMMddHHmmss` in GMT+7.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from urllib.parse import quote_plus

import msgspec

from payment_gateways.common import VIETNAM, hmac_sha512, same_signature, vietnam_time

VERSION = "2.1.0"
SUCCESS = "00"  # vnp_ResponseCode and vnp_TransactionStatus of a paid transaction
CUSTOMER_CANCELLED = "24"
NOT_FOUND = "91"  # querydr: no such transaction
_UNSIGNED = frozenset({"vnp_SecureHash", "vnp_SecureHashType"})


def _encode(value: str) -> str:
    # java.net.URLEncoder keeps `*` and escapes `~`; quote_plus does the opposite for both.
    return quote_plus(value, safe="*").replace("~", "%7E")


def sign_data(params: Mapping[str, str]) -> str:
    """The string VNPay hashes: the signed `vnp_` parameters, sorted and form-encoded."""
    signed = sorted((k, v) for k, v in params.items() if k.startswith("vnp_") and k not in _UNSIGNED)
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in signed)


def secure_hash(secret: str, params: Mapping[str, str]) -> str:
    return hmac_sha512(secret, sign_data(params))


def verify(secret: str, params: Mapping[str, str]) -> bool:
    """Whether `params` (a query string's, `vnp_SecureHash` included) were signed with `secret`."""
    return same_signature(secure_hash(secret, params), params.get("vnp_SecureHash", ""))


def signed_url(base: str, secret: str, params: Mapping[str, str]) -> str:
    """`base?params&vnp_SecureHash=...`: a payment URL, or a signed IPN or return URL."""
    return f"{base}?{sign_data(params)}&vnp_SecureHash={secure_hash(secret, params)}"


def timestamp(at: datetime) -> str:
    return vietnam_time(at).strftime("%Y%m%d%H%M%S")


def parse_timestamp(raw: str) -> datetime:
    return datetime.strptime(raw, "%Y%m%d%H%M%S").replace(tzinfo=VIETNAM)


def amount_of(vnd: Decimal) -> int:
    """VNPay's amount: VND times 100, so the smallest unit is a whole number."""
    return int(vnd * 100)


def vnd_of(amount: str | int) -> Decimal:
    return Decimal(int(amount)) / 100


class IpnAnswer(msgspec.Struct, frozen=True):
    """What the merchant answers an IPN; VNPay retries unless RspCode is 00 or 02."""

    RspCode: str
    Message: str


CONFIRMED = IpnAnswer("00", "Confirm Success")
ORDER_NOT_FOUND = IpnAnswer("01", "Order not found")
ALREADY_CONFIRMED = IpnAnswer("02", "Order already confirmed")
INVALID_AMOUNT = IpnAnswer("04", "Invalid amount")
INVALID_CHECKSUM = IpnAnswer("97", "Invalid signature")
UNKNOWN_ERROR = IpnAnswer("99", "Unknown error")


class _Message(msgspec.Struct, kw_only=True):
    """A transaction-API message; `SIGNED` names its fields in the order VNPay joins them with `|`."""

    SIGNED: ClassVar[tuple[str, ...]] = ()
    vnp_SecureHash: str = ""

    def pipe_data(self) -> str:
        return "|".join(str(getattr(self, name)) for name in self.SIGNED)

    def sign(self, secret: str) -> None:
        self.vnp_SecureHash = hmac_sha512(secret, self.pipe_data())

    def verify(self, secret: str) -> bool:
        return same_signature(hmac_sha512(secret, self.pipe_data()), self.vnp_SecureHash)


class Command(msgspec.Struct):
    """Just enough of a transaction-API request to route it."""

    vnp_Command: str


class QueryRequest(_Message, kw_only=True):
    SIGNED = (
        "vnp_RequestId",
        "vnp_Version",
        "vnp_Command",
        "vnp_TmnCode",
        "vnp_TxnRef",
        "vnp_TransactionDate",
        "vnp_CreateDate",
        "vnp_IpAddr",
        "vnp_OrderInfo",
    )
    vnp_RequestId: str
    vnp_Version: str = VERSION
    vnp_Command: str = "querydr"
    vnp_TmnCode: str
    vnp_TxnRef: str
    vnp_OrderInfo: str
    vnp_TransactionDate: str
    vnp_CreateDate: str
    vnp_IpAddr: str


FULL_REFUND, PARTIAL_REFUND = "02", "03"


class RefundRequest(_Message, kw_only=True):
    SIGNED = (
        "vnp_RequestId",
        "vnp_Version",
        "vnp_Command",
        "vnp_TmnCode",
        "vnp_TransactionType",
        "vnp_TxnRef",
        "vnp_Amount",
        "vnp_TransactionNo",
        "vnp_TransactionDate",
        "vnp_CreateBy",
        "vnp_CreateDate",
        "vnp_IpAddr",
        "vnp_OrderInfo",
    )
    vnp_RequestId: str
    vnp_Version: str = VERSION
    vnp_Command: str = "refund"
    vnp_TmnCode: str
    vnp_TransactionType: str
    vnp_TxnRef: str
    vnp_Amount: str
    vnp_OrderInfo: str
    vnp_TransactionNo: str = ""
    vnp_TransactionDate: str
    vnp_CreateBy: str
    vnp_CreateDate: str
    vnp_IpAddr: str


class RefundResponse(_Message, kw_only=True):
    """The answer to a refund; a querydr answer has the same fields and two more."""

    SIGNED: ClassVar[tuple[str, ...]] = (
        "vnp_ResponseId",
        "vnp_Command",
        "vnp_ResponseCode",
        "vnp_Message",
        "vnp_TmnCode",
        "vnp_TxnRef",
        "vnp_Amount",
        "vnp_BankCode",
        "vnp_PayDate",
        "vnp_TransactionNo",
        "vnp_TransactionType",
        "vnp_TransactionStatus",
        "vnp_OrderInfo",
    )
    vnp_ResponseId: str
    vnp_Command: str = "refund"
    vnp_ResponseCode: str
    vnp_Message: str = ""
    vnp_TmnCode: str = ""
    vnp_TxnRef: str = ""
    vnp_Amount: str = ""
    vnp_BankCode: str = ""
    vnp_PayDate: str = ""
    vnp_TransactionNo: str = ""
    vnp_TransactionType: str = ""
    vnp_TransactionStatus: str = ""
    vnp_OrderInfo: str = ""


class QueryResponse(RefundResponse, kw_only=True):
    SIGNED = (*RefundResponse.SIGNED, "vnp_PromotionCode", "vnp_PromotionAmount")
    vnp_Command: str = "querydr"
    vnp_PromotionCode: str = ""
    vnp_PromotionAmount: str = ""
