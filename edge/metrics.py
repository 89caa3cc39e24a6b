"""The edge's Prometheus metrics: requests by cluster and status class, and their latency.

Each worker keeps its own registry (no multiprocess mode), so `/metrics` shows the worker that answered.
Label children are looked up once and kept, so observing a request is two cheap calls.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()

# Proxy overhead sits in the low milliseconds; the services' answers stretch the tail.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "edge_requests",
            "Requests answered by the edge, by route cluster and status class.",
            ("cluster", "status"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "edge_request_duration_seconds",
            "Time from a request's headers to the end of its response, by route cluster.",
            ("cluster",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe(self, cluster: str, status: int, seconds: float) -> None:
        key = (cluster, status // 100)
        children = self._children.get(key)
        if children is None:
            children = (self._requests.labels(cluster, f"{status // 100}xx"), self._latency.labels(cluster))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
