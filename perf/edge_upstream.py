"""The benchmark's upstream: a trivial JSON answer on granian (RSGI), the same for every path.

Run by `perf/edge_bench.py`; by hand: `granian --interface rsgi perf.edge_upstream:app --port 18081`.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"id":"3f1c1e9a-7f38-4a53-9a49-0d6c1f5f2b11","name":"Demo product","price":199000.0,"stock":42}'
HEADERS = [("content-type", "application/json")]


async def app(scope: Any, protocol: Any) -> None:
    """Every request gets the same small JSON document (health checks included)."""
    protocol.response_bytes(200, HEADERS, BODY)
