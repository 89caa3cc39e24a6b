"""The services svc_order calls: the catalog over HTTP, inventory and discounts over gRPC, and what
svc_discount publishes in Redis (whether any automatic discount exists).

One `Downstream` per process (`CLIENTS`, a kit.app.Resource: opened at start, closed at stop). The
catalog answers through a short in-process cache: a cart view or a checkout costs at most one batch
call (`GET /api/products?ids=`, up to 100 ids) for the products not seen in the last `ORDER_PRICE_TTL`
seconds, and concurrent requests for the same product share that call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

import msgspec

from kit import cache, httpclient
from kit import grpc as kit_grpc
from kit.app import Deps, Resource
from kit.errors import ServiceUnavailable
from protos import discount_pb2_grpc, inventory_pb2_grpc
from svc_order.config import OrderConfig

BATCH = 100  # the catalog's limit of ids per call
# svc_discount keeps it (svc_discount/automatic.py): b"0" only while no automatic discount exists.
AUTOMATIC_DISCOUNTS = "discount:automatic"
_MAX_KNOWN = 200_000


class Variant(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    price: Decimal


class Image(msgspec.Struct):
    url: str


class Category(msgspec.Struct):
    id: uuid.UUID


class Product(msgspec.Struct, rename="camel"):
    """What svc_order reads of a catalog product detail (it may carry more)."""

    id: uuid.UUID
    name: str
    price: Decimal
    seller_id: uuid.UUID | None = None
    category: Category | None = None
    variants: list[Variant] = []
    images: list[Image] = []

    def variant(self, variant_id: uuid.UUID) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    @property
    def image(self) -> str | None:
        return self.images[0].url if self.images else None


class _Page(msgspec.Struct):
    items: list[Product]


_decode_page = msgspec.json.Decoder(_Page).decode


class Catalog:
    """Active products by id, each remembered `ttl` seconds (None: not sold, or no such product)."""

    def __init__(self, base_url: str, ttl: float, timeout: float) -> None:
        self.ttl = ttl
        self.client = httpclient.Client(base_url, timeout=timeout)
        self._known: dict[uuid.UUID, tuple[float, Product | None]] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[dict[uuid.UUID, Product | None]]] = {}

    async def products(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Product | None]:
        """Every id of `ids` with its product (None when not for sale); 503 if the catalog is down."""
        now = time.monotonic()
        found: dict[uuid.UUID, Product | None] = {}
        loads: dict[uuid.UUID, asyncio.Task[dict[uuid.UUID, Product | None]]] = {}
        missing: list[uuid.UUID] = []
        for product_id in dict.fromkeys(ids):
            known = self._known.get(product_id)
            if known is not None and known[0] > now:
                found[product_id] = known[1]
            elif (task := self._loading.get(product_id)) is not None:
                loads[product_id] = task
            else:
                missing.append(product_id)
        for start in range(0, len(missing), BATCH):
            chunk = missing[start : start + BATCH]
            task = asyncio.create_task(self._fetch(chunk))
            for product_id in chunk:
                self._loading[product_id] = loads[product_id] = task
            task.add_done_callback(functools.partial(self._forget_loading, chunk))
        for product_id, task in loads.items():
            # Shielded: a caller that goes away does not cancel a load others wait for.
            found[product_id] = (await asyncio.shield(task))[product_id]
        return found

    def _forget_loading(self, chunk: list[uuid.UUID], _: object) -> None:
        for product_id in chunk:
            self._loading.pop(product_id, None)

    async def _fetch(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Product | None]:
        path = f"/api/products?ids={','.join(map(str, ids))}"
        try:
            status, body = await self.client.request("GET", path)
            if status != 200:
                raise ServiceUnavailable(f"The catalog answered {status}, please retry")
            page = _decode_page(body)
        except (OSError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError):
            raise ServiceUnavailable("The catalog is unavailable, please retry") from None
        by_id: dict[uuid.UUID, Product | None] = {p.id: p for p in page.items}
        if len(self._known) > _MAX_KNOWN:
            self._known.clear()
        until = time.monotonic() + self.ttl
        for product_id in ids:
            self._known[product_id] = (until, by_id.get(product_id))
        return {product_id: by_id.get(product_id) for product_id in ids}

    async def close(self) -> None:
        await self.client.close()


class Downstream:
    """The process's clients of the catalog, svc_inventory and svc_discount."""

    def __init__(self, config: OrderConfig, redis_url: str) -> None:
        self.config = config
        self.catalog = Catalog(config.product_url, config.price_ttl, config.deadline)
        # A client of its own, not the process's: svc_order only reads a hint there, and must stay ready
        # (kit.readiness) while Redis is down.
        self.published = cache.Cache(cache.connect(redis_url), "order")
        self._channels = [kit_grpc.channel(config.inventory_target), kit_grpc.channel(config.discount_target)]
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self._channels[0])  # type: ignore[no-untyped-call]
        self.discount = discount_pb2_grpc.DiscountServiceStub(self._channels[1])  # type: ignore[no-untyped-call]

    async def discount_may_apply(self, code: str | None) -> bool:
        """Whether ApplyDiscount has anything to decide: a code, or any automatic discount (unknown, or
        Redis unreachable: yes)."""
        return bool(code) or await self.published.get(AUTOMATIC_DISCOUNTS) != b"0"

    async def close(self) -> None:
        await self.catalog.close()
        assert self.published.redis is not None
        await self.published.redis.aclose()
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()


@contextlib.asynccontextmanager
async def _clients(deps: Deps) -> AsyncIterator[Downstream]:
    downstream = Downstream(OrderConfig.of(deps.settings), deps.settings.redis_url)
    try:
        yield downstream
    finally:
        await downstream.close()


CLIENTS = Resource("downstream", _clients)
