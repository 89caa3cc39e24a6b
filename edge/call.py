"""One proxied request's state, carried between the steps of `edge.proxy` on whichever path it takes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from edge.errors import EdgeError
    from edge.exchange import Exchange
    from edge.jwt import Claims
    from edge.routes import Route
    from edge.upstream import Pool


class Call:
    __slots__ = (
        "answered",
        "attempt",
        "avoid",
        "claims",
        "cors",
        "ex",
        "has_host",
        "head",
        "key",
        "order",
        "rejected",
        "request_id",
        "retries",
        "route",
        "span",
        "started",
        "traceparent_at",
        "upstream",
    )

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.started = time.perf_counter()
        self.answered = False
        self.route: Route | None = None
        self.request_id = b""
        self.cors = b""
        self.claims: Claims | None = None
        self.rejected: EdgeError | None = None
        self.key = ""
        # The upstream request head, less its Host line when the client sent none (has_host False).
        self.head = b""
        self.has_host = False
        self.order: list[Pool] | None = None
        # Attempts left after the first (decided at the first failure), and a destination to avoid.
        self.retries: int | None = None
        self.avoid: Pool | None = None
        # The destination of the last attempt, and the edge's span while tracing is on (edge.spans):
        # the request's, the current attempt's, and where the upstream head's traceparent value starts.
        self.upstream: Pool | None = None
        self.span: Span | None = None
        self.attempt: Span | None = None
        self.traceparent_at = -1
