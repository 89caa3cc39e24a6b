"""ZaloPay API v2 (`/v2/create|query|refund`, the callback and the redirect): shapes and HMAC-SHA256.

- create: `mac` = HMAC-SHA256(key1, app_id|app_trans_id|app_user|amount|app_time|embed_data|item);
  `app_trans_id` starts with the order's date `yymmdd` in GMT+7.
- callback (sent only for a paid order): `mac` = HMAC-SHA256(key2, data), `data` the JSON string as
  sent; the merchant answers {return_code, return_message}: 1 done, 2 already done, anything else and
  ZaloPay calls again.
- redirect: `checksum` = HMAC-SHA256(key2, appid|apptransid|pmcid|bankcode|amount|discountamount|status).
- query: mac over app_id|app_trans_id|key1; refund: mac over app_id|zp_trans_id|amount|description|timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from payment_gateways.common import hmac_sha256, same_signature, vietnam_time

SUCCESS, FAILED, PROCESSING = 1, 2, 3  # return_code of query and refund
CALLBACK_ORDER = 1


def app_trans_id(at: datetime, suffix: str) -> str:
    return f"{vietnam_time(at):%y%m%d}_{suffix}"


def _pipe(*values: object) -> str:
    return "|".join(str(value) for value in values)


class CreateRequest(msgspec.Struct, kw_only=True):
    app_id: int
    app_user: str
    app_trans_id: str
    app_time: int
    amount: int
    item: str = "[]"
    embed_data: str = "{}"
    description: str
    callback_url: str
    expire_duration_seconds: int | None = None
    bank_code: str = ""
    mac: str = ""

    def mac_data(self) -> str:
        return _pipe(
            self.app_id,
            self.app_trans_id,
            self.app_user,
            self.amount,
            self.app_time,
            self.embed_data,
            self.item,
        )


class CreateResponse(msgspec.Struct, kw_only=True):
    return_code: int
    return_message: str = ""
    sub_return_code: int = 0
    sub_return_message: str = ""
    order_url: str = ""
    zp_trans_token: str = ""


class Callback(msgspec.Struct):
    data: str
    mac: str
    type: int = CALLBACK_ORDER


class CallbackData(msgspec.Struct, kw_only=True):
    app_id: int
    app_trans_id: str
    app_time: int
    app_user: str
    amount: int
    embed_data: str = "{}"
    item: str = "[]"
    zp_trans_id: int
    server_time: int
    channel: int = 38
    merchant_user_id: str = ""
    user_fee_amount: int = 0
    discount_amount: int = 0


class CallbackAnswer(msgspec.Struct, frozen=True):
    return_code: int
    return_message: str


DONE = CallbackAnswer(1, "success")
ALREADY_DONE = CallbackAnswer(2, "already processed")
RETRY = CallbackAnswer(0, "temporary failure, please retry")


def rejected(reason: str) -> CallbackAnswer:
    return CallbackAnswer(-1, reason)


class QueryRequest(msgspec.Struct, kw_only=True):
    app_id: int
    app_trans_id: str
    mac: str = ""

    def mac_data(self, key1: str) -> str:
        return _pipe(self.app_id, self.app_trans_id, key1)


class QueryResponse(msgspec.Struct, kw_only=True):
    return_code: int
    return_message: str = ""
    sub_return_code: int = 0
    sub_return_message: str = ""
    is_processing: bool = False
    amount: int = 0
    zp_trans_id: int = 0
    server_time: int = 0


class RefundRequest(msgspec.Struct, kw_only=True):
    m_refund_id: str  # yymmdd_appid_xxx, unique per refund: ZaloPay refunds each id once
    app_id: int
    zp_trans_id: int
    amount: int
    timestamp: int
    description: str
    mac: str = ""

    def mac_data(self) -> str:
        return _pipe(self.app_id, self.zp_trans_id, self.amount, self.description, self.timestamp)


class RefundResponse(msgspec.Struct, kw_only=True):
    return_code: int
    return_message: str = ""
    sub_return_code: int = 0
    sub_return_message: str = ""
    refund_id: int = 0


def mac(key: str, data: str) -> str:
    return hmac_sha256(key, data)


def mac_matches(key: str, data: str, given: str) -> bool:
    return same_signature(hmac_sha256(key, data), given)


REDIRECT_FIELDS = ("appid", "apptransid", "pmcid", "bankcode", "amount", "discountamount", "status")


def redirect_data(params: Mapping[str, str]) -> str:
    """What the redirect's `checksum` covers (with key2)."""
    return _pipe(*(params.get(name, "") for name in REDIRECT_FIELDS))
