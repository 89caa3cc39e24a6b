"""CORS at the edge: one allow-list of origins per environment, preflights answered here.

- A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) never reaches a service:
  an allowed origin gets 204 with the methods and headers it may use, any other gets 403.
- Any other request from an allowed origin gets that exact origin echoed back, with `Vary: Origin`
  (the answer depends on it, so caches must key on it) and the headers a browser may read. A request
  from an origin not on the list is served without CORS headers, so the browser withholds the answer.
- `*` in the list means any origin, and is refused together with credentials (browsers refuse that
  combination too; echoing every origin with credentials would hand any site the user's session).

Header lines are built once per origin and kept, so a cross-origin request costs a dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = b"authorization, content-type, idempotency-key, x-request-id, traceparent"
# Besides the CORS-safelisted ones: what a client needs to correlate, retry and pace itself.
EXPOSED_HEADERS = b"x-request-id, retry-after, ratelimit, ratelimit-policy, location"
VARY = b"vary: origin\r\n"


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str] = frozenset()
    credentials: bool = True
    max_age: int = 600

    def __post_init__(self) -> None:
        if "*" in self.origins and self.credentials:
            raise ValueError("EDGE_CORS_ORIGINS=* cannot go with credentials (EDGE_CORS_CREDENTIALS=false)")
        for origin in self.origins:
            if origin != "*" and ("://" not in origin or origin.endswith("/")):
                raise ValueError(f"a CORS origin is scheme://host[:port], got {origin!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.origins)


class Cors:
    """The policy, with each allowed origin's header lines built on first use."""

    def __init__(self, policy: CorsPolicy) -> None:
        self.enabled = policy.enabled
        self._any = "*" in policy.origins
        self._origins = {origin.encode() for origin in policy.origins if origin != "*"}
        self._credentials = b"access-control-allow-credentials: true\r\n" if policy.credentials else b""
        self._max_age = policy.max_age
        self._simple: dict[bytes, bytes] = {}
        self._preflight: dict[bytes, bytes] = {}

    def _allowed(self, origin: bytes) -> bool:
        return self._any or origin in self._origins

    def _allow_origin(self, origin: bytes) -> bytes:
        return (
            b"access-control-allow-origin: " + (b"*" if self._any else origin) + b"\r\n" + self._credentials
        )

    def response_headers(self, origin: bytes) -> bytes:
        """The lines to add to an answer for a request that came with `Origin: origin`."""
        lines = self._simple.get(origin)
        if lines is None:
            if not self._allowed(origin):
                return VARY
            lines = (
                self._allow_origin(origin) + b"access-control-expose-headers: " + EXPOSED_HEADERS + b"\r\n"
            )
            lines += VARY
            if len(self._simple) < 1024:
                self._simple[origin] = lines
        return lines

    def preflight(self, origin: bytes) -> bytes | None:
        """The headers of a 204 answering a preflight, or None when the origin is refused."""
        if not self._allowed(origin):
            return None
        lines = self._preflight.get(origin)
        if lines is None:
            lines = (
                self._allow_origin(origin)
                + b"access-control-allow-methods: "
                + ALLOWED_METHODS
                + b"\r\naccess-control-allow-headers: "
                + ALLOWED_HEADERS
                + b"\r\naccess-control-max-age: %d\r\n" % self._max_age
                + b"vary: origin, access-control-request-method, access-control-request-headers\r\n"
            )
            if len(self._preflight) < 1024:
                self._preflight[origin] = lines
        return lines
