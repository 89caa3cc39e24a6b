"""The edge's own `/health/live` and `/health/ready`, answered on the public port and the admin port.

Readiness reports, per cluster, whether it has a destination in rotation, and per destination; and the
rate limit store. A cluster with none answers its own routes 503 while the others serve, so the edge
stays in rotation (status "degraded"): only when it can route nothing at all is it 503 (README,
"Observability"). Redis down keeps it ready: it limits per process meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import orjson

from edge.admin import Answer
from edge.ratelimit import Limiter
from edge.upstream import Cluster

JSON = b"content-type: application/json\r\n"


class Readiness:
    def __init__(self, clusters: Mapping[str, Cluster], limiter: Limiter) -> None:
        self._clusters = clusters
        self._limiter = limiter

    @staticmethod
    def live() -> Answer:
        return 200, JSON, b'{"status":"ok"}'

    def ready(self) -> Answer:
        now = time.monotonic()
        clusters = {
            name: {pool.url: "up" if pool.usable_at(now) else "down" for pool in cluster.pools}
            for name, cluster in self._clusters.items()
        }
        routing = {name: "up" if "up" in pools.values() else "down" for name, pools in clusters.items()}
        routable = sum(state == "up" for state in routing.values())
        status = "ok" if routable == len(routing) else "degraded" if routable else "unavailable"
        checks = {"rateLimitStore": "up" if self._limiter.redis_up else "down (per-process limits)"}
        body = {"status": status, "checks": checks, "routing": routing, "clusters": clusters}
        return 200 if routable or not routing else 503, JSON, orjson.dumps(body)

    def pages(self) -> dict[str, Callable[[], Answer]]:
        return {"/health/live": self.live, "/health/ready": self.ready}
