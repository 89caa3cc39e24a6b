"""`/openapi.json` and `/docs` at the edge: cold routes answered from memory, off the proxy's hot path.

The merged document is built from the services' own `/openapi.json`, fetched by each worker at start
(not built from the services' code: the edge never imports a service, and the document then always
describes what is deployed, version for version). A service that does not answer yet is asked again
with a growing pause until every document is in; meanwhile the document served says which are missing
(`x-missing`). Once complete it is refreshed every `refresh` seconds, so a redeployed service shows its
changes. The docs page is Swagger UI from the `swagger-ui-bundle-v2` package, served from its files:
it works offline, no CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import swagger_ui_bundle

from edge.openapi import merge
from edge.routes import RouteTable
from edge.upstream import Cluster

log = logging.getLogger(__name__)

Page = Callable[[], tuple[int, bytes, bytes]]

ASSETS = {
    "swagger-ui.css": b"text/css; charset=utf-8",
    "swagger-ui-bundle.js": b"text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": b"text/javascript; charset=utf-8",
    "favicon-32x32.png": b"image/png",
}
# The assets' file names carry no version, so a browser revalidates them within the day.
_ASSET_CACHING = b"cache-control: public, max-age=86400\r\n"
_NO_STORE = b"cache-control: no-cache\r\n"
_INDEX = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Shop API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  deepLinking: true,
  persistAuthorization: true,
});
</script>
</body>
</html>
"""


def _content_type(media: bytes) -> bytes:
    return b"content-type: " + media + b"\r\n"


class ApiDocs:
    """The merged document and the docs page of one edge worker."""

    def __init__(
        self,
        clusters: Mapping[str, Cluster],
        routes: RouteTable,
        *,
        timeout: float = 2.0,
        retry: float = 1.0,
        refresh: float = 300.0,
    ) -> None:
        self._clusters = clusters
        self._routes = routes
        self._timeout = timeout
        self._retry = retry
        self._refresh = refresh
        self._documents: dict[str, dict[str, Any]] = {}
        self._merged = self._render()
        self._task: asyncio.Task[None] | None = None
        folder = Path(str(swagger_ui_bundle.swagger_ui_path))
        self._assets = {name: (folder / name).read_bytes() for name in ASSETS}

    @property
    def complete(self) -> bool:
        return set(self._documents) >= set(self._clusters)

    def pages(self) -> dict[str, Page]:
        """What the proxy answers itself, by path."""
        pages: dict[str, Page] = {
            "/openapi.json": self._document,
            "/docs": lambda: (200, _content_type(b"text/html; charset=utf-8") + _NO_STORE, _INDEX),
        }
        for name, media in ASSETS.items():
            head, body = _content_type(media) + _ASSET_CACHING, self._assets[name]
            pages[f"/docs/{name}"] = lambda head=head, body=body: (200, head, body)  # type: ignore[misc]
        return pages

    def _document(self) -> tuple[int, bytes, bytes]:
        return 200, _content_type(b"application/json") + _NO_STORE, self._merged

    def _render(self) -> bytes:
        ordered = {name: self._documents[name] for name in self._clusters if name in self._documents}
        missing = [name for name in self._clusters if name not in self._documents]
        return orjson.dumps(merge(ordered, self._routes, missing))

    async def fetch(self, client: httpx.AsyncClient) -> None:
        """Read every service's document once; keep what answered, note what did not."""

        async def one(name: str, cluster: Cluster) -> None:
            for pool in sorted(cluster.pools, key=lambda pool: not pool.healthy):
                try:
                    answer = await client.get(f"{pool.url.rstrip('/')}/openapi.json")
                    answer.raise_for_status()
                    self._documents[name] = answer.json()
                    return
                except (httpx.HTTPError, ValueError) as exc:
                    log.debug("no OpenAPI document from %s: %r", pool.url, exc)

        await asyncio.gather(*(one(name, cluster) for name, cluster in self._clusters.items()))
        self._merged = self._render()

    async def _run(self) -> None:
        pause = self._retry
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            while True:
                await self.fetch(client)
                if not self.complete:
                    missing = sorted(set(self._clusters) - set(self._documents))
                    log.info("OpenAPI documents still missing: %s", ", ".join(missing))
                pause = self._refresh if self.complete else min(pause * 2, 30.0)
                await asyncio.sleep(pause)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="openapi")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
