"""The services svc_order calls: the catalog over HTTP, inventory and discounts over gRPC, and what
svc_discount publishes in Redis (whether any automatic discount exists).

One `Downstream` per process (`CLIENTS`, a kit.app.Resource: opened at start, closed at stop). The
catalog is asked only about products svc_order's projection does not know yet (svc_order.projection):
one batch call (`GET /api/products?ids=`, up to 100 ids) per 100 of them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
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


class Variant(msgspec.Struct, rename="camel", frozen=True):
    id: uuid.UUID
    name: str
    price: Decimal  # the variant's own price (not a difference to the product's)


class Product(msgspec.Struct, frozen=True):
    """What svc_order knows of a product for sale: what a cart line and an order item show."""

    id: uuid.UUID
    name: str
    price: Decimal
    seller_id: uuid.UUID
    category_id: uuid.UUID
    image: str | None
    variants: list[Variant]
    version: int  # the catalog's revision of the product (0: unknown, any event is newer)

    def variant(self, variant_id: uuid.UUID) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


class _Image(msgspec.Struct):
    url: str


class _Category(msgspec.Struct):
    id: uuid.UUID


class _Detail(msgspec.Struct, rename="camel"):
    """What svc_order reads of a catalog product detail (it carries more)."""

    id: uuid.UUID
    name: str
    price: Decimal
    seller_id: uuid.UUID
    category: _Category
    variants: list[Variant] = []
    images: list[_Image] = []
    version: int = 0  # absent from a catalog older than the field

    def product(self) -> Product:
        image = self.images[0].url if self.images else None
        return Product(
            self.id,
            self.name,
            self.price,
            self.seller_id,
            self.category.id,
            image,
            self.variants,
            self.version,
        )


class _Page(msgspec.Struct):
    items: list[_Detail]


_decode_page = msgspec.json.Decoder(_Page).decode


class Catalog:
    """svc_product's batch read of active products."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.client = httpclient.Client(base_url, timeout=timeout)

    async def for_sale(self, ids: Sequence[uuid.UUID]) -> list[Product]:
        """The products among `ids` that are for sale now (absent: not for sale, or no such product);
        503 if the catalog is down."""
        found: list[Product] = []
        for start in range(0, len(ids), BATCH):
            path = f"/api/products?ids={','.join(map(str, ids[start : start + BATCH]))}"
            try:
                status, body = await self.client.request("GET", path)
                if status != 200:
                    raise ServiceUnavailable(f"The catalog answered {status}, please retry")
                found += [detail.product() for detail in _decode_page(body).items]
            except (OSError, TimeoutError, msgspec.DecodeError, msgspec.ValidationError):
                raise ServiceUnavailable("The catalog is unavailable, please retry") from None
        return found

    async def close(self) -> None:
        await self.client.close()


class Downstream:
    """The process's clients of the catalog, svc_inventory and svc_discount."""

    def __init__(self, config: OrderConfig, redis_url: str) -> None:
        self.config = config
        self.catalog = Catalog(config.product_url, config.deadline)
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
