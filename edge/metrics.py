"""The edge's Prometheus metrics: rate, errors and duration per route, and the state of its helpers.

Observing a request is on the hot path of every request, so this is hand-rolled rather than
prometheus_client (which takes a lock and walks label objects per observation): a route's figures are
a few integers in a slotted object found by one dict lookup, rendered to the text format on scrape.
Each worker keeps its own figures, so `/metrics` shows the worker that answered (sum over workers).

    edge_requests_total{route,cluster,status="2xx"}         answers by status class
    edge_request_duration_seconds_bucket{route,cluster,le}  time from request head to answer end
    edge_upstream_up{cluster,destination}                   1 unless failed readiness or ejected
    edge_rate_limited_total, edge_rate_limit_fallback_total, edge_rate_limit_store_up
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from edge.ratelimit import Limiter
    from edge.routes import Route
    from edge.upstream import Cluster

CONTENT_TYPE = b"content-type: text/plain; version=0.0.4; charset=utf-8\r\n"

# Proxy overhead sits well under a millisecond; the services' answers stretch the tail.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _RouteFigures:
    __slots__ = ("buckets", "by_class", "count", "labels", "total")

    def __init__(self, labels: str) -> None:
        self.labels = labels
        # Index = status // 100 (0 for a connection cut before any status).
        self.by_class = [0] * 6
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class Metrics:
    content_type: ClassVar[bytes] = CONTENT_TYPE

    def __init__(self) -> None:
        # By id(route): a dataclass hashes all its fields on every lookup; routes live as long as we do.
        self._figures: dict[int, _RouteFigures] = {}

    def observe(self, route: Route | None, status: int, seconds: float) -> None:
        figures = self._figures.get(id(route))
        if figures is None:
            labels = (
                f'route="{_escape(route.label)}",cluster="{route.cluster}"'
                if route
                else 'route="-",cluster="edge"'
            )
            figures = self._figures[id(route)] = _RouteFigures(labels)
        figures.by_class[status // 100 if 100 <= status < 600 else 0] += 1
        figures.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        figures.count += 1
        figures.total += seconds

    def render(self, clusters: Mapping[str, Cluster], limiter: Limiter) -> bytes:
        lines = [
            "# HELP edge_requests_total Requests answered by the edge, by route and status class.",
            "# TYPE edge_requests_total counter",
        ]
        for figures in self._figures.values():
            for cls, count in enumerate(figures.by_class):
                if count:
                    status = f"{cls}xx" if cls else "none"
                    lines.append(f'edge_requests_total{{{figures.labels},status="{status}"}} {count}')
        lines += [
            "# HELP edge_request_duration_seconds Time from a request's head to the end of its answer.",
            "# TYPE edge_request_duration_seconds histogram",
        ]
        for figures in self._figures.values():
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), figures.buckets, strict=True):
                cumulative += count
                lines.append(
                    f'edge_request_duration_seconds_bucket{{{figures.labels},le="{bound}"}} {cumulative}'
                )
            lines.append(f"edge_request_duration_seconds_sum{{{figures.labels}}} {figures.total}")
            lines.append(f"edge_request_duration_seconds_count{{{figures.labels}}} {figures.count}")
        lines += [
            "# HELP edge_upstream_up Whether a destination is in rotation (ready and not ejected).",
            "# TYPE edge_upstream_up gauge",
        ]
        now = time.monotonic()
        for name, cluster in clusters.items():
            for pool in cluster.pools:
                up = int(pool.usable_at(now))
                lines.append(f'edge_upstream_up{{cluster="{name}",destination="{_escape(pool.url)}"}} {up}')
        lines += [
            "# HELP edge_rate_limited_total Requests refused by a rate limit.",
            "# TYPE edge_rate_limited_total counter",
            f"edge_rate_limited_total {limiter.refused}",
            "# HELP edge_rate_limit_fallback_total Limit decisions taken per process while Redis was away.",
            "# TYPE edge_rate_limit_fallback_total counter",
            f"edge_rate_limit_fallback_total {limiter.fallbacks}",
            "# HELP edge_rate_limit_store_up Whether the shared rate limit store (Redis) is reachable.",
            "# TYPE edge_rate_limit_store_up gauge",
            f"edge_rate_limit_store_up {int(limiter.redis_up)}",
        ]
        return ("\n".join(lines) + "\n").encode()
