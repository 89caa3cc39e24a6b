"""Schemathesis hooks for the fuzzing run (loaded through `SCHEMATHESIS_HOOKS`, see test_schema_fuzz.py).

Every request carries a bearer token of one of the fuzzing accounts (`SHOP_FUZZ_TOKENS`, comma
separated), taken in turn: each account is its own user for the edge's per-user rate limit, so the run
is not throttled into a stream of 429s.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import schemathesis

_tokens = itertools.cycle(os.environ.get("SHOP_FUZZ_TOKENS", "").split(",") or [""])


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    token = next(_tokens)
    if token:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
