"""The routing table: which cluster serves a path, and whether it needs a token.

Routes are data. A pattern is matched segment by segment: a literal segment matches itself, `*` matches
exactly one non-empty segment, and a trailing `**` matches any rest, including nothing (so
`/api/products/**` matches `/api/products` and `/api/products/1/reviews`, never `/api/productsx`).
The first route of the table that matches both the path and the method wins, so the specific public
routes come before the protected catch-all of their prefix.

A route is the place for per-route policy. Rate-limit overrides, timeouts and balancing choices will
become fields here, so the table stays the one place to read what the edge does with a path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

READS = frozenset({"GET", "HEAD"})
GET = frozenset({"GET"})
POST = frozenset({"POST"})


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    cluster: str
    # None means every method.
    methods: frozenset[str] | None = None
    public: bool = False
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pattern.startswith("/api/"):
            raise ValueError(f"route pattern must start with /api/: {self.pattern!r}")
        object.__setattr__(self, "segments", tuple(self.pattern.split("/")[1:]))

    def matches(self, method: str, segments: list[str]) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        pattern = self.segments
        if pattern[-1] == "**":
            prefix = pattern[:-1]
            if len(segments) < len(prefix):
                return False
        elif len(segments) != len(pattern):
            return False
        else:
            prefix = pattern
        for want, got in zip(prefix, segments, strict=False):
            if want == "*":
                if not got:
                    return False
            elif want != got:
                return False
        return True


ROUTES: tuple[Route, ...] = (
    Route("/api/auth/register", "auth", POST, public=True),
    Route("/api/auth/verify-email", "auth", POST, public=True),
    Route("/api/auth/resend-verification", "auth", POST, public=True),
    Route("/api/auth/login", "auth", POST, public=True),
    Route("/api/auth/refresh", "auth", POST, public=True),
    Route("/api/auth/logout", "auth", POST, public=True),
    Route("/api/auth/**", "auth"),
    Route("/api/users/*/avatar", "user", GET, public=True),
    Route("/api/users/**", "user"),
    Route("/api/cart/**", "order"),
    Route("/api/orders/**", "order"),
    Route("/api/products/**", "product", READS, public=True),
    Route("/api/products/**", "product"),
    Route("/api/categories/**", "product", READS, public=True),
    Route("/api/categories/**", "product"),
    Route("/api/brands/**", "product", READS, public=True),
    Route("/api/brands/**", "product"),
    Route("/api/admin/cache/**", "product"),
    Route("/api/payments/*/return", "payment", public=True),
    Route("/api/payments/*/ipn", "payment", public=True),
    Route("/api/payments/**", "payment"),
    # Stock is public product information; `low-stock` matches too, and svc_inventory requires Admin there.
    Route("/api/inventory/*", "inventory", READS, public=True),
    Route("/api/inventory/**", "inventory"),
    Route("/api/discounts/*/validate", "discount", GET, public=True),
    Route("/api/discounts/**", "discount"),
    Route("/api/campaigns/**", "discount"),
    Route("/api/notifications/**", "notify"),
)


class RouteTable:
    """The table indexed by the segment after `/api/`, so a lookup scans a handful of routes."""

    def __init__(self, routes: Iterable[Route] = ROUTES) -> None:
        self.routes = tuple(routes)
        self._by_area: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_area.setdefault(route.segments[1], []).append(route)

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(route.cluster for route in self.routes))

    def match(self, method: str, path: str) -> Route | None:
        """The route for a decoded, dot-segment-free path, or None."""
        segments = path.split("/")[1:]
        if len(segments) < 2 or segments[0] != "api":
            return None
        for route in self._by_area.get(segments[1], ()):
            if route.matches(method, segments):
                return route
        return None
