"""What the gateway protocols share: hex HMACs compared in constant time, Vietnam time, VND amounts."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from decimal import Decimal

# Every gateway dates its messages in Vietnam time (GMT+7), which has no daylight saving.
VIETNAM = timezone(timedelta(hours=7), "ICT")


def hmac_sha256(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def hmac_sha512(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha512).hexdigest()


def same_signature(expected: str, given: str) -> bool:
    """Compare hex digests in constant time; gateways may send them in either case."""
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())


def vietnam_time(at: datetime) -> datetime:
    return at.astimezone(VIETNAM)


def whole_vnd(amount: Decimal) -> int:
    """`amount` as the integer VND that MoMo and ZaloPay take; ValueError when it has a fraction."""
    if amount != amount.to_integral_value():
        raise ValueError(f"{amount} VND is not a whole amount")
    return int(amount)
