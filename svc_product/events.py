"""Events svc_product publishes (product.exchange) and the user events it consumes for review authors."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from kit.app import Deps
from kit.bus import AfterCommit, Event, Handler
from svc_product import caching, store
from svc_product.store import ProductFields


class EventVariant(msgspec.Struct, rename="camel"):
    """A variant as product events carry it (its price is the variant's own, not a difference)."""

    id: uuid.UUID
    sku: str
    name: str
    price: float


_variants = msgspec.json.Decoder(list[EventVariant])


class ProductEvent(Event):
    """A product as it is after the change. `sellerId` tells svc_inventory who may set its stock;
    `version` (raised by every change) lets a consumer that keeps products keep the newest, and
    `variants` is what svc_order prices a cart line of a variant with (added to the contract's fields)."""

    product_id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    slug: str
    price: float
    status: str
    category_id: uuid.UUID
    brand_id: uuid.UUID | None
    image: str | None
    version: int
    variants: list[EventVariant]

    @classmethod
    def of(
        cls, product_id: uuid.UUID, fields: ProductFields, version: int, published: asyncpg.Record
    ) -> ProductEvent:
        """The event of `fields` at `version`, with `published`, a row of `store.PUBLISHED`."""
        return cls(
            product_id=product_id,
            seller_id=fields.seller_id,
            name=fields.name,
            slug=fields.slug,
            price=fields.price,
            status=fields.status,
            category_id=fields.category_id,
            brand_id=fields.brand_id,
            image=published["image"],
            version=version,
            variants=_variants.decode(published["variants"]),
        )


class ProductCreated(ProductEvent):
    routing_key = "product.created"


class ProductUpdated(ProductEvent):
    routing_key = "product.updated"


class ProductDeleted(ProductEvent):
    routing_key = "product.deleted"


class UserVerified(Event):
    """From svc_auth: an account's first name on record."""

    routing_key = "user.verified"
    user_id: uuid.UUID
    full_name: str


class UserProfileUpdated(Event):
    """From svc_user: `fullName` is there when the name is among the changes."""

    routing_key = "user.profile.updated"
    user_id: uuid.UUID
    full_name: str | None = None


class AvailabilityChanged(Event):
    """From svc_inventory (our addition to the contract): the product came into or went out of stock."""

    routing_key = "inventory.availability-changed"
    product_id: uuid.UUID
    available: bool


async def on_availability_changed(
    conn: asyncpg.Connection, event: AvailabilityChanged, deps: Deps
) -> AfterCommit | None:
    """Record it (a newer announcement only); the lists are dropped once that has committed."""
    changed = await conn.fetchval(store.SET_IN_STOCK, event.product_id, event.available, event.occurred_at)
    if not changed:
        return None
    cache = deps.cache
    assert cache is not None

    async def drop_lists() -> None:
        await caching.stock_changed(cache)

    return drop_lists


async def on_user_verified(conn: asyncpg.Connection, event: UserVerified, deps: Deps) -> AfterCommit | None:
    return await _rename(conn, deps, event.user_id, event.full_name, event.occurred_at)


async def on_user_profile_updated(
    conn: asyncpg.Connection, event: UserProfileUpdated, deps: Deps
) -> AfterCommit | None:
    if event.full_name is not None and event.full_name.strip():
        return await _rename(conn, deps, event.user_id, event.full_name.strip(), event.occurred_at)
    return None


async def _rename(
    conn: asyncpg.Connection, deps: Deps, user_id: uuid.UUID, name: str, at: datetime
) -> AfterCommit | None:
    """Record the author's name; the review pages that show it are dropped once that has committed
    (dropped before, a reader in between would cache the old name again for the page's TTL)."""
    if await conn.fetchval(store.UPSERT_AUTHOR, user_id, name, at) is None:
        return None  # the same name, or an older event than the name on record
    cache = deps.cache
    assert cache is not None
    products = [row["product_id"] for row in await conn.fetch(store.REVIEWED_BY, user_id)]

    async def drop_pages() -> None:
        await caching.authors_changed(cache, products)

    return drop_pages


handlers: dict[str, Handler] = {
    AvailabilityChanged.routing_key: on_availability_changed,
    UserVerified.routing_key: on_user_verified,
    UserProfileUpdated.routing_key: on_user_profile_updated,
}
