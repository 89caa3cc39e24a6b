"""Current stock for the product detail, from svc_inventory, without letting it slow the detail down.

- svc_inventory's `GetInventory` over gRPC (the contract's way between services), on one channel per
  process (`STOCK`, opened at start, closed at stop), with a short deadline (150 ms by default). A
  detail waits for a first look at most `PRODUCT_STOCK_WAIT` (50 ms by default), then answers without
  stock while the call goes on to fill the memo for the next view.
- Each figure is remembered in the process for `PRODUCT_STOCK_TTL` seconds (5 by default). After that it
  is still served, for at most six times as long, while a background call refreshes it; so the stock a
  shopper sees is at most a few seconds old, and a hot product costs svc_inventory one lookup per process
  every few seconds, never one per view.
- Lookups go in groups: a first look is sent at the end of the loop's turn with whatever else was asked
  meanwhile, a refresh waits up to `GATHER` (20 ms) for company; one call carries up to 500 products.
  With 500 hot products a process refreshes ~100 figures a second: one call each cost svc_product and
  svc_inventory about a millisecond of CPU together (perf/README.md, "Stock in groups").
- When svc_inventory fails (down, slow, an error), the detail answers with `"stock": null` and
  svc_inventory is left alone for a second, so an outage costs one failed call per second, not one per view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import grpc

from kit import grpc as kit_grpc
from kit.app import Deps, Resource
from kit.http import encode
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc
from svc_product.config import ProductConfig
from svc_product.schemas import StockLevel

log = logging.getLogger(__name__)

NULL = b"null"
GATHER = 0.02
_BATCH = 500  # GetInventory's limit
_PAUSE_AFTER_ERROR = 1.0
_MAX_ENTRIES = 200_000


def product_levels(rows: Iterable[pb.StockLevel]) -> dict[str, bytes]:
    """Each product's figure as `GET /api/inventory/{id}` sums it: its variants' units added up, the
    latest change's time."""
    totals: dict[str, StockLevel] = {}
    for row in rows:
        updated_at = datetime.fromisoformat(row.updated_at)
        total = totals.get(row.product_id)
        if total is None:
            totals[row.product_id] = StockLevel(
                available=row.available, reserved=row.reserved, on_hand=row.on_hand, updated_at=updated_at
            )
            continue
        total.available += row.available
        total.reserved += row.reserved
        total.on_hand += row.on_hand
        total.updated_at = max(total.updated_at, updated_at)
    return {product_id: encode(total) for product_id, total in totals.items()}


class Stock:
    """Stock figures by product id, as JSON ready to splice into a detail document."""

    def __init__(self, channel: grpc.aio.Channel, ttl: float, wait: float, timeout: float) -> None:
        self.channel = channel
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(channel)  # type: ignore[no-untyped-call]
        self.ttl = ttl
        self.wait = wait
        self.timeout = timeout
        self._known: dict[str, tuple[float, bytes]] = {}
        self._asked: dict[str, asyncio.Future[bytes]] = {}  # not sent yet
        self._loading: dict[str, asyncio.Future[bytes]] = {}  # in a call
        self._send: asyncio.Handle | None = None  # the sending of `_asked`, soon or after GATHER
        self._calls: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0

    async def close(self) -> None:
        if self._send is not None:
            self._send.cancel()
        for task in self._calls:
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        for future in (*self._asked.values(), *self._loading.values()):
            future.cancel()
        with contextlib.suppress(Exception):
            await self.channel.close()
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
                self._ask(product_id, soon=False)  # refresh behind the answer
                return known[1]
        if now < self._paused_until:
            return NULL
        future = self._ask(product_id, soon=True)
        # asyncio.wait neither cancels the lookup when the wait ends nor hides a cancellation of the request.
        done, _ = await asyncio.wait((future,), timeout=self.wait)
        return future.result() if done else NULL

    def _ask(self, product_id: str, soon: bool) -> asyncio.Future[bytes]:
        """The one lookup of `product_id` asked or in flight, asked now if there is none; `soon`: sent at
        the end of this turn of the loop, else within `GATHER`."""
        future = self._asked.get(product_id) or self._loading.get(product_id)
        if future is None:
            future = self._asked[product_id] = asyncio.get_running_loop().create_future()
            if len(self._asked) >= _BATCH:
                self._send_asked()
                return future
        if product_id in self._asked:
            self._schedule(soon)
        return future

    def _schedule(self, soon: bool) -> None:
        loop = asyncio.get_running_loop()
        if soon and isinstance(self._send, asyncio.TimerHandle):
            self._send.cancel()  # a first look does not wait for the refreshes' company
            self._send = None
        if self._send is None:
            self._send = (
                loop.call_soon(self._send_asked) if soon else loop.call_later(GATHER, self._send_asked)
            )

    def _send_asked(self) -> None:
        if self._send is not None:
            self._send.cancel()
            self._send = None
        batch, self._asked = self._asked, {}
        if batch:
            self._loading.update(batch)
            call = asyncio.create_task(self._fetch(batch))
            self._calls.add(call)  # held until done: the loop keeps only a weak reference
            call.add_done_callback(self._calls.discard)

    async def _fetch(self, batch: dict[str, asyncio.Future[bytes]]) -> None:
        levels: dict[str, bytes] | None
        try:
            request = pb.GetInventoryRequest(product_ids=list(batch))
            levels = product_levels((await self.inventory.GetInventory(request, timeout=self.timeout)).items)
        except (grpc.aio.AioRpcError, ValueError) as exc:
            self._paused_until = time.monotonic() + _PAUSE_AFTER_ERROR
            log.warning("inventory unavailable, answering without stock", extra={"error": repr(exc)})
            levels = None
        finally:
            for product_id, future in batch.items():
                if self._loading.get(product_id) is future:
                    del self._loading[product_id]
        figures = {
            product_id: NULL if levels is None else levels.get(product_id, NULL) for product_id in batch
        }
        if levels is None:
            for product_id in batch:
                self._known.pop(product_id, None)
        else:
            if len(self._known) + len(batch) > _MAX_ENTRIES:
                self._known.clear()
            now = time.monotonic()
            self._known.update((product_id, (now, figure)) for product_id, figure in figures.items())
        for product_id, future in batch.items():
            if not future.done():
                future.set_result(figures[product_id])


@contextlib.asynccontextmanager
async def _stock(deps: Deps) -> AsyncIterator[Stock]:
    config = ProductConfig.of(deps.settings)
    stock = Stock(
        kit_grpc.channel(config.inventory_target),
        ttl=config.stock_ttl,
        wait=config.stock_wait,
        timeout=config.inventory_timeout,
    )
    try:
        yield stock
    finally:
        await stock.close()


STOCK = Resource("stock", _stock)
