"""The buyer pool's accounts: deterministic emails and one password, shared by the setup command
(perf/load/buyers.py, which creates them) and the load run (which logs them in)."""

from __future__ import annotations

import uuid

PASSWORD = "Load-Buyer-123!"


def email(number: int) -> str:
    return f"buyer{number:05d}@load.shop.local"


def user_id(number: int) -> uuid.UUID:
    """A fixed id per pool account, so a re-run of the setup finds what an earlier one made."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-load-buyer:{number}")
