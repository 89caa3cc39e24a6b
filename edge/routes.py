"""The routing table: which cluster serves a path, and whether it needs a token.

Routes are data. A pattern is matched segment by segment: a literal segment matches itself, `*` matches
exactly one non-empty segment, and a trailing `**` matches any rest, including nothing (so
`/api/products/**` matches `/api/products` and `/api/products/1/reviews`, never `/api/productsx`).
The first route of the table that matches both the path and the method wins, so the specific public
routes come before the protected catch-all of their prefix.

A route is also the place for per-route policy, so the table stays the one place to read what the
edge does with a path: an extra rate limit (`limit`, on top of the per-user or per-IP one, keyed the
same way), and its own upstream timeouts (`connect_timeout`, `response_timeout`; None = the config's).
A route limit is named, and `EDGE_RATE_LIMIT_<NAME>=<count>/<seconds>` replaces it (edge.config).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# Distinct (method, path) answers remembered; past it, lookups scan (still a handful of routes).
ROUTE_CACHE_SIZE = 4096
READS = frozenset({"GET", "HEAD"})
GET = frozenset({"GET"})
POST = frozenset({"POST"})


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """At most `count` requests per `seconds` for one caller on this route (a token bucket of `count`)."""

    name: str
    count: int
    seconds: float


# Password guessing and mail bombing: far below what any person needs, well above a retyped password.
LOGIN_LIMIT = RouteLimit("login", 10, 60)
MAIL_LIMIT = RouteLimit("mail", 5, 600)


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    cluster: str
    # None means every method.
    methods: frozenset[str] | None = None
    public: bool = False
    limit: RouteLimit | None = None
    connect_timeout: float | None = None
    response_timeout: float | None = None
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # How metrics name it, e.g. "GET|HEAD /api/products/**".
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pattern.startswith("/api/"):
            raise ValueError(f"route pattern must start with /api/: {self.pattern!r}")
        object.__setattr__(self, "segments", tuple(self.pattern.split("/")[1:]))
        methods = "|".join(sorted(self.methods)) + " " if self.methods else ""
        object.__setattr__(self, "label", methods + self.pattern)

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
    Route("/api/auth/register", "auth", POST, public=True, limit=MAIL_LIMIT),
    Route("/api/auth/verify-email", "auth", POST, public=True),
    Route("/api/auth/resend-verification", "auth", POST, public=True, limit=MAIL_LIMIT),
    # Login hashes a password on purpose slowly: bound the guesses, and give it more time.
    Route("/api/auth/login", "auth", POST, public=True, limit=LOGIN_LIMIT, response_timeout=60),
    Route("/api/auth/refresh", "auth", POST, public=True),
    Route("/api/auth/logout", "auth", POST, public=True),
    Route("/api/auth/**", "auth"),
    Route("/api/users/*/avatar", "user", GET, public=True),
    Route("/api/users/**", "user"),
    Route("/api/cart/**", "order"),
    Route("/api/orders/**", "order"),
    # Its own line in the metrics (a search box's latency is watched apart from the lists'); a suggestion
    # that comes after a second is of no use to the shopper, who has typed on.
    Route("/api/products/suggest", "product", READS, public=True, response_timeout=1.0),
    Route("/api/products/**", "product", READS, public=True),
    Route("/api/products/**", "product"),
    Route("/api/categories/**", "product", READS, public=True),
    Route("/api/categories/**", "product"),
    Route("/api/brands/**", "product", READS, public=True),
    Route("/api/brands/**", "product"),
    Route("/api/admin/cache/**", "product"),
    # The buyer's browser follows checkout's paymentUrl here, to be redirected to the gateway's page.
    Route("/api/payments/pay/*", "payment", GET, public=True),
    Route("/api/payments/*/return", "payment", public=True),
    Route("/api/payments/*/ipn", "payment", public=True),
    Route("/api/payments/**", "payment"),
    # Stock is public product information; `low-stock` matches too, and svc_inventory requires Admin there.
    Route("/api/inventory/*", "inventory", READS, public=True),
    Route("/api/inventory/**", "inventory"),
    Route("/api/discounts/*/validate", "discount", GET, public=True),
    Route("/api/discounts/**", "discount"),
    Route("/api/campaigns/**", "discount"),
    # Twilio's delivery reports: public, each checked against its X-Twilio-Signature by svc_notify.
    Route("/api/notifications/sms/status", "notify", POST, public=True),
    Route("/api/notifications/**", "notify"),
    Route("/api/admin/dlq/**", "notify"),
)


class RouteTable:
    """The table indexed by the segment after `/api/`, so a lookup scans a handful of routes."""

    def __init__(self, routes: Iterable[Route] = ROUTES) -> None:
        self.routes = tuple(routes)
        self._cache: dict[tuple[str, str], Route | None] = {}
        self._by_area: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_area.setdefault(route.segments[1], []).append(route)

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([route.cluster for route in self.routes]))

    @property
    def limits(self) -> tuple[RouteLimit, ...]:
        return tuple(dict.fromkeys([route.limit for route in self.routes if route.limit is not None]))

    def replace_limits(self, limits: dict[str, RouteLimit]) -> RouteTable:
        """The same table with the named route limits replaced (a count of 0 removes a limit)."""
        changed = []
        for route in self.routes:
            limit = route.limit
            if limit is not None and limit.name in limits:
                limit = limits[limit.name] if limits[limit.name].count > 0 else None
            changed.append(replace(route, limit=limit))
        return RouteTable(changed)

    def match(self, method: str, path: str) -> Route | None:
        """The route for a decoded, dot-segment-free path, or None.

        Answers are remembered for the hottest paths (a bounded cache: ids in paths make them many).
        """
        key = (method, path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        route = self._match(method, path)
        if len(self._cache) < ROUTE_CACHE_SIZE:
            self._cache[key] = route
        return route

    def _match(self, method: str, path: str) -> Route | None:
        segments = path.split("/")[1:]
        if len(segments) < 2 or segments[0] != "api":
            return None
        for route in self._by_area.get(segments[1], ()):
            if route.matches(method, segments):
                return route
        return None
