"""Current stock for the product detail, from svc_inventory, without letting it slow the detail down.

- One HTTP client per process (`STOCK`, opened at start, closed at stop), a short timeout (150 ms by
  default). A detail waits for a first look at most `PRODUCT_STOCK_WAIT` (50 ms by default), then
  answers without stock while the call goes on to fill the memo for the next view.
- Each figure is remembered in the process for `PRODUCT_STOCK_TTL` seconds (5 by default). After that it
  is still served, for at most six times as long, while one background call refreshes it; so the stock a
  shopper sees is at most a few seconds old, and a hot product costs svc_inventory one call per process
  every few seconds, never one per view.
- When svc_inventory fails (down, slow, an error), the detail answers with `"stock": null` and
  svc_inventory is left alone for a second, so an outage costs one failed call per second, not one per view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

import msgspec

from kit.app import Deps, Resource
from kit.http import encode
from kit.httpclient import Client
from svc_product.config import ProductConfig
from svc_product.schemas import StockLevel

log = logging.getLogger(__name__)

NULL = b"null"
_PAUSE_AFTER_ERROR = 1.0
_MAX_ENTRIES = 200_000


class _Inventory(msgspec.Struct):
    """What we read of svc_inventory's `GET /api/inventory/{productId}`; it may add fields."""

    available: int
    reserved: int
    on_hand: int = msgspec.field(name="onHand")
    updated_at: datetime = msgspec.field(name="updatedAt")


_decode = msgspec.json.Decoder(_Inventory).decode


class Stock:
    """Stock figures by product id, as JSON ready to splice into a detail document."""

    def __init__(self, client: Client, ttl: float, wait: float) -> None:
        self.client = client
        self.ttl = ttl
        self.wait = wait
        self._known: dict[str, tuple[float, bytes]] = {}
        self._loading: dict[str, asyncio.Task[bytes]] = {}
        self._paused_until = 0.0

    async def close(self) -> None:
        for task in self._loading.values():
            task.cancel()
        await asyncio.gather(*self._loading.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.client.close()
        self._known.clear()

    async def of(self, product_id: str) -> bytes:
        """The product's stock as JSON (`null` when unknown); waits on svc_inventory only for a first look."""
        now = time.monotonic()
        known = self._known.get(product_id)
        if known is not None:
            age = now - known[0]
            if age < self.ttl:
                return known[1]
            if age < self.ttl * 6:
                self._load(product_id)  # refresh behind the answer
                return known[1]
        if now < self._paused_until:
            return NULL
        task = self._load(product_id)
        # asyncio.wait neither cancels the call when the wait ends nor hides a cancellation of the request.
        done, _ = await asyncio.wait((task,), timeout=self.wait)
        return task.result() if done else NULL

    def _load(self, product_id: str) -> asyncio.Task[bytes]:
        """The one call in flight for `product_id`, started if there is none."""
        task = self._loading.get(product_id)
        if task is None:
            task = self._loading[product_id] = asyncio.create_task(self._fetch(product_id))
            task.add_done_callback(lambda _: self._loading.pop(product_id, None))
        return task

    async def _fetch(self, product_id: str) -> bytes:
        try:
            status, answer = await self.client.request("GET", f"/api/inventory/{product_id}")
            if status == 404:
                body = NULL
            else:
                if status != 200:
                    raise ConnectionError(f"svc_inventory answered {status}")
                level = _decode(answer)
                body = encode(
                    StockLevel(
                        available=level.available,
                        reserved=level.reserved,
                        on_hand=level.on_hand,
                        updated_at=level.updated_at,
                    )
                )
        except (OSError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._paused_until = time.monotonic() + _PAUSE_AFTER_ERROR
            self._known.pop(product_id, None)
            log.warning("inventory unavailable, answering without stock", extra={"error": repr(exc)})
            return NULL
        if len(self._known) >= _MAX_ENTRIES:
            self._known.clear()
        self._known[product_id] = (time.monotonic(), body)
        return body


@contextlib.asynccontextmanager
async def _stock(deps: Deps) -> AsyncIterator[Stock]:
    config = ProductConfig.of(deps.settings)
    stock = Stock(
        Client(config.inventory_url, size=32, timeout=config.inventory_timeout),
        ttl=config.stock_ttl,
        wait=config.stock_wait,
    )
    try:
        yield stock
    finally:
        await stock.close()


STOCK = Resource("stock", _stock)
