"""The catalog's writes: each change and its event in one transaction, then the cache invalidated.

Invalidation comes after the commit (a reader that reloads in between would otherwise cache the old
row), and the product's document is then reloaded through the cache by the writer itself, so the next
read is a hit on the new state (write-through).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
from msgspec import UNSET

from kit.app import Deps
from kit.bus import publish
from kit.cache import Cache
from kit.errors import Conflict, Forbidden, NotFound, invalid
from kit.identity import Identity
from svc_product import caching, store
from svc_product.catalog import FALLBACK_AUTHOR
from svc_product.events import ProductCreated, ProductDeleted, ProductEvent, ProductUpdated
from svc_product.schemas import (
    BrandInput,
    BrandPatch,
    CategoryInput,
    CategoryPatch,
    ProductInput,
    ProductPatch,
    Review,
    ReviewInput,
)
from svc_product.store import ProductFields

_CHILDREN = (
    ("variants", store.replace_variants),
    ("attributes", store.replace_attributes),
    ("images", store.replace_images),
)


def _cache(d: Deps) -> Cache:
    assert d.cache is not None
    return d.cache


def changes_of(body: msgspec.Struct, current: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of `current` that `body` sets: a patch's given fields, a full body's every field, except
    an absent slug, which keeps the current one (URLs stay stable)."""
    changes = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if name in current and value is not UNSET and not (name == "slug" and value is None):
            changes[name] = value
    return changes


def new_product_slug(name: str, product_id: uuid.UUID) -> str:
    """Readable and unique without a lookup: the name's slug and the start of the id."""
    return f"{store.slugify(name)}-{product_id.hex[:8]}"


async def _publish(
    conn: asyncpg.Connection,
    kind: type[ProductEvent],
    product_id: uuid.UUID,
    fields: ProductFields,
    version: int,
) -> None:
    published = await conn.fetchrow(store.PUBLISHED, product_id)
    await publish(conn, kind.of(product_id, fields, version, published))


async def _write_children(
    conn: asyncpg.Connection, product_id: uuid.UUID, body: ProductInput | ProductPatch
) -> None:
    for name, replace in _CHILDREN:
        value = getattr(body, name)
        if value is not UNSET:
            await replace(conn, product_id, value)


async def create_product(d: Deps, who: Identity, body: ProductInput) -> uuid.UUID:
    """A new product of the caller (its seller), announced as product.created."""
    product_id = uuid.uuid4()
    fields = ProductFields(
        seller_id=who.user_id,
        name=body.name,
        slug=body.slug or new_product_slug(body.name, product_id),
        description=body.description,
        price=body.price,
        status=body.status,
        category_id=body.category_id,
        brand_id=body.brand_id,
    )
    async with d.db.acquire() as conn, conn.transaction():
        with store.explained():
            version = await conn.fetchval(store.INSERT_PRODUCT, product_id, *fields.columns())
            await _write_children(conn, product_id, body)
        await _publish(conn, ProductCreated, product_id, fields, version)
    await caching.product_changed(_cache(d), product_id)
    return product_id


async def _owned(conn: asyncpg.Connection, product_id: uuid.UUID, who: Identity) -> asyncpg.Record:
    """The product's row, locked; only its seller or an admin may change it."""
    current = await conn.fetchrow(store.CURRENT, product_id)
    if current is None:
        raise NotFound("Product not found")
    if not who.is_admin and current["seller_id"] != who.user_id:
        raise Forbidden("Sellers can change only their own products")
    return current


async def update_product(
    d: Deps, who: Identity, product_id: uuid.UUID, body: ProductInput | ProductPatch
) -> None:
    """Replace (PUT) or change (PATCH) a product, announced as product.updated."""
    async with d.db.acquire() as conn, conn.transaction():
        current = await _owned(conn, product_id, who)
        fields = ProductFields(**{**dict(current), **changes_of(body, current)})
        with store.explained():
            version = await conn.fetchval(store.UPDATE_PRODUCT, product_id, *fields.columns())
            await _write_children(conn, product_id, body)
        await _publish(conn, ProductUpdated, product_id, fields, version)
    await caching.product_changed(_cache(d), product_id)


async def delete_product(d: Deps, who: Identity, product_id: uuid.UUID) -> None:
    """Soft delete: the row stays for the orders and reviews that refer to it. Sends product.deleted."""
    async with d.db.acquire() as conn, conn.transaction():
        current = await _owned(conn, product_id, who)
        version = await conn.fetchval(store.DELETE_PRODUCT, product_id)
        await _publish(conn, ProductDeleted, product_id, ProductFields(**dict(current)), version)
    await caching.product_changed(_cache(d), product_id)


async def add_review(d: Deps, who: Identity, product_id: uuid.UUID, body: ReviewInput) -> Review:
    """The caller's one review of an active product; the product's average and count move with it."""
    review_id = uuid.uuid4()
    async with d.db.acquire() as conn, conn.transaction():
        seller_id = await conn.fetchval(store.REVIEWABLE, product_id)
        if seller_id is None:
            raise NotFound("Product not found")
        if seller_id == who.user_id:
            raise Forbidden("Sellers cannot review their own products")
        with store.explained():
            created_at = await conn.fetchval(
                store.INSERT_REVIEW, review_id, product_id, who.user_id, body.rating, body.comment
            )
        await conn.execute(store.RATE_PRODUCT, product_id, body.rating)
        author = await conn.fetchval(store.AUTHOR_NAME, who.user_id, FALLBACK_AUTHOR)
    await caching.reviews_changed(_cache(d), product_id)
    return Review(
        id=review_id,
        product_id=product_id,
        user_id=who.user_id,
        author_name=author,
        rating=body.rating,
        comment=body.comment,
        created_at=created_at,
    )


async def create_category(d: Deps, body: CategoryInput) -> uuid.UUID:
    category_id = uuid.uuid4()
    async with d.db.acquire() as conn:
        with store.explained():
            await conn.execute(
                store.INSERT_CATEGORY,
                category_id,
                body.parent_id,
                body.name,
                body.slug or store.slugify(body.name),
                body.description,
                body.position,
            )
    await caching.categories_changed(_cache(d), [])
    return category_id


async def update_category(d: Deps, category_id: uuid.UUID, body: CategoryInput | CategoryPatch) -> None:
    """Rename, describe, reorder or move a category (never below itself)."""
    async with d.db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(store.CATEGORY_FOR_UPDATE, category_id)
        if current is None:
            raise NotFound("Category not found")
        row = {**dict(current), **changes_of(body, current)}
        parent_id = row["parent_id"]
        moved = parent_id is not None and parent_id != current["parent_id"]
        if moved and await conn.fetchval(store.WOULD_CYCLE, category_id, parent_id):
            raise invalid("parentId", "A category cannot move below itself or its own sub-categories")
        with store.explained():
            await conn.execute(
                store.UPDATE_CATEGORY,
                category_id,
                parent_id,
                row["name"],
                row["slug"],
                row["description"],
                row["position"],
            )
        products = [r["id"] for r in await conn.fetch(store.PRODUCTS_BELOW, category_id)]
    await caching.categories_changed(_cache(d), products)


async def delete_category(d: Deps, category_id: uuid.UUID) -> None:
    """Only an empty category goes: no sub-category, no product (deleted ones keep theirs for history)."""
    async with d.db.acquire() as conn, conn.transaction():
        if await conn.fetchrow(store.CATEGORY_FOR_UPDATE, category_id) is None:
            raise NotFound("Category not found")
        if await conn.fetchval(store.CATEGORY_IN_USE, category_id):
            raise Conflict("The category still has sub-categories or products")
        await conn.execute(store.DELETE_CATEGORY, category_id)
    await caching.categories_changed(_cache(d), [])


async def create_brand(d: Deps, body: BrandInput) -> uuid.UUID:
    brand_id = uuid.uuid4()
    slug = body.slug or store.slugify(body.name)
    async with d.db.acquire() as conn:
        with store.explained():
            await conn.execute(store.INSERT_BRAND, brand_id, body.name, slug, body.description, body.logo_url)
    await caching.brands_changed(_cache(d), [])
    return brand_id


async def update_brand(d: Deps, brand_id: uuid.UUID, body: BrandInput | BrandPatch) -> None:
    async with d.db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(store.BRAND_FOR_UPDATE, brand_id)
        if current is None:
            raise NotFound("Brand not found")
        row = {**dict(current), **changes_of(body, current)}
        with store.explained():
            await conn.execute(
                store.UPDATE_BRAND, brand_id, row["name"], row["slug"], row["description"], row["logo_url"]
            )
        products = [r["id"] for r in await conn.fetch(store.PRODUCTS_OF_BRAND, brand_id)]
    await caching.brands_changed(_cache(d), products)


async def delete_brand(d: Deps, brand_id: uuid.UUID) -> None:
    """Only a brand no product names goes (deleted products keep theirs for history)."""
    async with d.db.acquire() as conn, conn.transaction():
        if await conn.fetchrow(store.BRAND_FOR_UPDATE, brand_id) is None:
            raise NotFound("Brand not found")
        if await conn.fetchval(store.BRAND_IN_USE, brand_id):
            raise Conflict("Products still carry this brand")
        await conn.execute(store.DELETE_BRAND, brand_id)
    await caching.brands_changed(_cache(d), [])
