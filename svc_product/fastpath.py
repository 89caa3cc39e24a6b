"""The catalog's hottest request, a cached product detail, answered before Starlette's router.

`GET /api/products/{id}` is most of the catalog's traffic and nearly always a cache hit. Starlette would
match it against the route table, build a `Request`, wrap `send` for its exception handling and convert
a header dict per answer; this ASGI layer (inside `kit.metrics.Observe`, so request ids, metrics and
traces are unchanged) reads the cache and answers with the same status, headers and body as the route
(`kit.representation.respond`). Anything else, and a detail the cache does not hold (a miss, a draft
shown to its seller, an unknown id), goes on to the router as before.
"""

from __future__ import annotations

import re

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kit.representation import respond
from svc_product import catalog

PREFIX = "/api/products/"
# An id in its canonical form (lower case, 36 characters), used as it is for the cache's keys (parsing
# it and formatting it back cost ~5 % of the worker's time); any other spelling takes the router.
_START = len(PREFIX)
_LENGTH = _START + 36
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CachedDetail:
    """`route` is the detail's own route, named to the metrics as the router would have matched it."""

    def __init__(self, app: ASGIApp, route: Route) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        hot = scope["type"] == "http" and scope["method"] == "GET" and len(path) == _LENGTH
        if (
            hot
            and path.startswith(PREFIX)
            and _CANONICAL.fullmatch(path, _START)
            and await self._answered(scope, receive, send, path[_START:])
        ):
            return
        await self.app(scope, receive, send)

    async def _answered(self, scope: Scope, receive: Receive, send: Send, product_id: str) -> bool:
        found = await catalog.cached_product_view(scope["app"].state.deps, product_id)
        if found is None:
            return False
        # The first of each, as Starlette's `request.headers.get` takes it.
        if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding" and accept_encoding is None:
                accept_encoding = value.decode("latin-1")
        scope["route"] = self.route
        document, tail = found
        await respond("GET", if_none_match or "", accept_encoding or "", document, tail)(scope, receive, send)
        return True
