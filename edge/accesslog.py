"""The JSON access log: one line per request on stdout, for a sampled share of requests.

One request in a hundred by default (`EDGE_ACCESS_LOG=0.01`): on the hot path a log line costs more
than the rest of the request's bookkeeping, and the metrics already count everything, so the log is a
sample to read, not a record. `EDGE_ACCESS_LOG=1` logs every request, `0` none (errors, 5xx included,
are sampled the same way; the metrics have them all).
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import IO, TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from edge.exchange import Exchange
    from edge.jwt import Claims
    from edge.routes import Route


class AccessLog:
    def __init__(self, sample: float, stream: IO[bytes] | None = None) -> None:
        self._sample = sample
        self._stream = stream or sys.stdout.buffer
        # Which worker process answered (created after the fork).
        self._worker = os.getpid()

    def record(
        self, ex: Exchange, route: Route | None, seconds: float, request_id: bytes, claims: Claims | None
    ) -> None:
        if self._sample < 1.0 and random.random() >= self._sample:
            return
        line = {
            "time": time.time(),
            "method": ex.method,
            "target": ex.target.decode("latin-1"),
            "status": ex.status,
            "ms": round(seconds * 1000, 3),
            "route": route.label if route else None,
            "peer": ex.peer,
            "user": claims.sub if claims else None,
            "requestId": request_id.decode("latin-1"),
            "worker": self._worker,
        }
        self._stream.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        self._stream.flush()
