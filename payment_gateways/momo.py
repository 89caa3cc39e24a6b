"""MoMo payment API v2 (`/v2/gateway/api/create|query|refund` and the IPN): shapes and HMAC-SHA256.

Each message is signed with HMAC-SHA256(secret key) over a raw string of `name=value` pairs joined by
`&`, the names in the fixed alphabetical order MoMo documents for that message, `accessKey` first.
Values go in as they are, not URL-encoded. The merchant answers an IPN with 204 No Content.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from payment_gateways.common import hmac_sha256, same_signature

SUCCESS = 0
# Query result codes that mean "not final yet": initiated, processing, authorised but not captured.
PENDING_CODES = frozenset({1000, 7000, 7002, 9000})
USER_DENIED = 1006
NOT_FOUND = 42  # "invalid orderId or orderId is not found"


class _Message(msgspec.Struct, rename="camel", kw_only=True):
    """A MoMo message; `SIGNED` lists the wire names its raw signature string covers, in order."""

    SIGNED: ClassVar[tuple[str, ...]] = ()
    partner_code: str
    signature: str = ""

    def raw_signature(self, access_key: str) -> str:
        values = msgspec.to_builtins(self)
        values["accessKey"] = access_key
        return "&".join(f"{name}={values[name]}" for name in self.SIGNED)

    def sign(self, access_key: str, secret_key: str) -> None:
        self.signature = hmac_sha256(secret_key, self.raw_signature(access_key))

    def verify(self, access_key: str, secret_key: str) -> bool:
        expected = hmac_sha256(secret_key, self.raw_signature(access_key))
        return same_signature(expected, self.signature)


class CreateRequest(_Message, kw_only=True):
    SIGNED = (
        "accessKey",
        "amount",
        "extraData",
        "ipnUrl",
        "orderId",
        "orderInfo",
        "partnerCode",
        "redirectUrl",
        "requestId",
        "requestType",
    )
    request_id: str
    amount: int
    order_id: str
    order_info: str
    redirect_url: str
    ipn_url: str
    request_type: str = "captureWallet"
    extra_data: str = ""
    lang: str = "vi"


class CreateResponse(_Message, kw_only=True):
    SIGNED = (
        "accessKey",
        "amount",
        "message",
        "orderId",
        "partnerCode",
        "payUrl",
        "requestId",
        "responseTime",
        "resultCode",
    )
    request_id: str
    order_id: str
    amount: int
    response_time: int
    message: str
    result_code: int
    pay_url: str = ""


class Ipn(_Message, kw_only=True):
    """The payment result MoMo POSTs to `ipnUrl` (and appends to `redirectUrl` as a query string)."""

    SIGNED = (
        "accessKey",
        "amount",
        "extraData",
        "message",
        "orderId",
        "orderInfo",
        "orderType",
        "partnerCode",
        "payType",
        "requestId",
        "responseTime",
        "resultCode",
        "transId",
    )
    order_id: str
    request_id: str
    amount: int
    order_info: str
    order_type: str = "momo_wallet"
    trans_id: int
    result_code: int
    message: str
    pay_type: str = ""
    response_time: int
    extra_data: str = ""


class QueryRequest(_Message, kw_only=True):
    SIGNED = ("accessKey", "orderId", "partnerCode", "requestId")
    request_id: str
    order_id: str
    lang: str = "vi"


class Answer(msgspec.Struct, rename="camel", kw_only=True):
    """A query's or refund's answer; MoMo does not sign these (they answer the merchant's own request)."""

    order_id: str = ""
    amount: int = 0
    trans_id: int = 0
    result_code: int
    message: str = ""
    response_time: int = 0


QueryResponse = Answer
RefundResponse = Answer


class RefundRequest(_Message, kw_only=True):
    """`order_id` is the refund's own new id; `trans_id` the paid transaction's."""

    SIGNED = ("accessKey", "amount", "description", "orderId", "partnerCode", "requestId", "transId")
    order_id: str
    request_id: str
    amount: int
    trans_id: int
    lang: str = "vi"
    description: str = ""
