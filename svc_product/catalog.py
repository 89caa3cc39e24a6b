"""The catalog's reads: cached documents (cache-aside through kit.cache), loaded from PostgreSQL on a miss.

Only what every caller sees alike is cached: active products, the public list, the tree, the brands,
review pages. A seller's drafts and an admin's view of every status are read from PostgreSQL each time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
from prometheus_client import Counter

from kit.app import Deps
from kit.cache import Cache
from kit.errors import Forbidden, NotFound
from kit.http import encode
from kit.identity import Identity
from kit.lifecycle import every
from kit.representation import Representation, pack
from svc_product import caching, documents, facets, index, listing, search, store, suggest
from svc_product.config import ProductConfig
from svc_product.query import ListQuery, ReviewQuery
from svc_product.stock import STOCK

loads = Counter("shop_catalog_loads_total", "Catalog documents read from PostgreSQL", ["document"])
FALLBACK_AUTHOR = "Customer"
Reader = Callable[[asyncpg.Connection], Awaitable[bytes | None]]
# Packed entries (kit.representation) live under keys of their own: a process of an earlier release that
# shares the Redis during a rolling deploy must never send one as a plain JSON body.
PACKED = "|packed"


def _cache(d: Deps) -> Cache:
    assert d.cache is not None, "svc_product runs with Redis configured"
    return d.cache


async def product_document(d: Deps, product_id: uuid.UUID) -> Representation | None:
    """The cached detail document (without stock) of an active product, None when there is none."""

    async def read(conn: asyncpg.Connection) -> bytes | None:
        rows = await conn.fetch(store.ACTIVE_DETAILS, [product_id])
        return documents.encode_detail(rows[0]) if rows else None

    namespace = caching.product_namespace(product_id)
    return await _one(d, namespace, caching.DETAIL, caching.DETAIL_TTL, "detail", read)


async def product_view(
    d: Deps, product_id: uuid.UUID, who: Callable[[], Identity | None]
) -> tuple[Representation, bytes]:
    """`GET /api/products/{id}`: the detail, and the ending that adds its current stock.

    A draft or inactive product is shown to its seller and to admins only (read uncached; `who` is asked
    only then); to anyone else it does not exist.
    """
    document = await product_document(d, product_id)
    if document is None:
        document = Representation(await _unlisted_document(d, product_id, who()))
    return document, documents.stock_tail(await STOCK.of(d).of(str(product_id)))


async def cached_product_view(d: Deps, product_id: str) -> tuple[Representation, bytes] | None:
    """`product_view` when the cache holds the product's detail, else None (nothing loaded); the id in
    its canonical form."""
    entry = await _cache(d).cached(caching.DETAIL + PACKED, caching.product_namespace(product_id))
    if entry is None:
        return None
    return Representation(entry), documents.stock_tail(await STOCK.of(d).of(product_id))


async def _unlisted_document(d: Deps, product_id: uuid.UUID, who: Identity | None) -> bytes:
    if who is not None and (who.is_admin or who.has("Seller")):
        async with d.db.acquire() as conn:
            row = await conn.fetchrow(store.DETAIL, product_id)
        if row is not None and (who.is_admin or row["seller_id"] == who.user_id):
            return documents.encode_detail(row)
    raise NotFound("Product not found")


def seller_scope(query: ListQuery, who: Identity | None) -> uuid.UUID | None:
    """Whose products a list beyond the active ones may show: anyone's to an admin, their own to a seller."""
    if query.status == "active" or (who is not None and who.is_admin):
        return None
    if who is not None and who.has("Seller"):
        return who.user_id
    raise Forbidden("Only sellers (their own products) and admins may list products that are not active")


async def product_list(d: Deps, query: ListQuery, who: Identity | None) -> Representation:
    """`GET /api/products`: a page of summaries, with `facets` when asked and `didYouMean` when the search
    as typed found nothing but its spelling correction did. The public list (active products) is cached,
    facets included."""
    scope = seller_scope(query, who)

    async def read(conn: asyncpg.Connection) -> bytes:
        found = await listing.product_page(conn, query, scope)
        items = documents.trimmed([documents.summary(row) for row in found.rows], query.fields)
        extra: dict[str, object] = {}
        if found.did_you_mean is not None:
            extra["didYouMean"] = found.did_you_mean
        if query.facets:
            extra["facets"] = msgspec.Raw((await facets.counts(conn, query, scope, found)).encode())
        return documents.page(items, query.page, query.page_size, found.total, **extra)

    if query.status != "active":
        async with d.db.acquire() as conn:
            return Representation(await read(conn))

    async def compute(version: int | None) -> bytes:
        loads.labels("list").inc()
        if version is not None and ProductConfig.of(d.settings).search_index:
            index.holder.saw(version)
            if (current := await index.holder.fresh(d.db)) is not None:
                return await search.product_list(current, d.db, query)
        # Redis cannot say what other processes changed, or the index is being read whole.
        async with d.db.acquire() as conn:
            return await read(conn)

    cache = _cache(d)
    if query.search is not None:
        # Searches are mostly asked once: answered from the index (~0.5 ms), not written to Redis (a 10-60
        # KiB entry per search that is seldom read again), nor compressed unless the client asks.
        return Representation(await compute(await cache.version(caching.LISTS)))

    async def packed(version: int | None) -> bytes:
        return pack(await compute(version))

    key = query.cache_key() + PACKED
    return Representation(await cache.get_or_compute(key, caching.LIST_TTL, packed, caching.LISTS))


async def suggestions(d: Deps, text: str) -> Representation:
    """`GET /api/products/suggest`: from the process's index, answers kept with it per normalised text;
    from PostgreSQL while the index is behind or cannot be known to be current (Redis unreachable)."""
    followed = time.monotonic() < index.holder.followed_until and ProductConfig.of(d.settings).search_index
    current = await index.holder.fresh(d.db) if followed else None
    if current is None:
        async with d.db.acquire() as conn:
            return Representation(await suggest.suggestions(conn, text))
    key = ("suggest", text)
    if (entry := current.remembered.get(key)) is None:
        loads.labels("suggest").inc()
        entry = pack(await search.suggestions(current, d.db, text))
        current.remember(key, entry)
    assert isinstance(entry, bytes)
    return Representation(entry)


async def follow(d: Deps) -> None:
    """Background job: keep the index at the lists' version in Redis (asked every 0.1 s), brought up to
    date as soon as it is behind; the suggestions take it as current for a second after each look. Once
    a minute it moves the index's snapshot on even if nothing was written, and prunes the change log.
    It owns the whole reads: one still running at stop is cancelled with it."""
    cache = _cache(d)
    config = ProductConfig.of(d.settings)
    tended = time.monotonic()

    async def look() -> None:
        nonlocal tended
        if not config.search_index:
            return
        version = await cache.version(caching.LISTS)
        if version is None:
            return
        index.holder.saw(version)
        if time.monotonic() - tended > index.REFRESH_EVERY:
            tended = time.monotonic()
            index.holder.changed()
            await index.prune(d.db)
        await index.holder.whole(d.db)
        index.holder.followed_until = time.monotonic() + 1.0

    try:
        await every(config.follow_every, look, name="catalog-index")
    finally:
        await index.holder.stop()


async def product_batch(d: Deps, ids: tuple[uuid.UUID, ...]) -> bytes:
    """`GET /api/products?ids=...`: the detail documents of the active products among `ids`, in that order.

    Read from PostgreSQL, not the cache: svc_order prices carts with it and wants the latest price.
    """
    async with d.db.acquire() as conn:
        rows = await conn.fetch(store.ACTIVE_DETAILS, list(ids))
    by_id = {row["id"]: row for row in rows}
    items = [documents.detail(by_id[i]) for i in ids if i in by_id]
    return documents.page(items, 1, len(ids), len(items))


async def reviews(d: Deps, product_id: uuid.UUID, query: ReviewQuery) -> Representation:
    """A page of an active product's reviews with their authors' current names."""

    async def read(conn: asyncpg.Connection) -> bytes | None:
        if not await conn.fetchval(store.VISIBLE, product_id):
            return None
        statement = store.REVIEWS[(query.sort_by, query.descending)]
        rows = await conn.fetch(statement, product_id, query.page_size, query.offset, FALLBACK_AUTHOR)
        total = rows[0]["total"] if rows else await conn.fetchval(store.COUNT_REVIEWS, product_id)
        return documents.page([documents.review(row) for row in rows], query.page, query.page_size, total)

    namespace = caching.reviews_namespace(product_id)
    found = await _one(d, namespace, query.cache_key(), caching.REVIEWS_TTL, "reviews", read)
    if found is None:
        raise NotFound("Product not found")
    return found


async def _one(d: Deps, namespace: str, key: str, ttl: int, kind: str, read: Reader) -> Representation | None:
    """Cache-aside for one document: `read` builds it from a connection on a miss (None: no such thing).

    The cache holds it packed (kit.representation): with its ETag and gzipped form, made once here."""

    async def load() -> bytes | None:
        loads.labels(kind).inc()
        async with d.db.acquire() as conn:
            body = await read(conn)
        return None if body is None else pack(body)

    entry = await _cache(d).get_or_load(key + PACKED, ttl, load, namespace=namespace)
    return None if entry is None else Representation(entry)


async def _all(d: Deps, namespace: str, ttl: int, kind: str, read: Reader) -> Representation:
    found = await _one(d, namespace, caching.ALL, ttl, kind, read)
    assert found is not None
    return found


async def _by_id(
    d: Deps, namespace: str, ttl: int, kind: str, entity_id: uuid.UUID, sql: str, build: Callable[..., Any]
) -> Representation:
    """One cached entity by id, built by `build` from the row of `sql`; 404 when there is none."""

    async def read(conn: asyncpg.Connection) -> bytes | None:
        row = await conn.fetchrow(sql, entity_id)
        return encode(build(row)) if row is not None else None

    found = await _one(d, namespace, str(entity_id), ttl, kind, read)
    if found is None:
        raise NotFound(f"{kind.capitalize()} not found")
    return found


async def category_tree(d: Deps) -> Representation:
    async def read(conn: asyncpg.Connection) -> bytes:
        return encode(documents.category_tree(await conn.fetch(store.ALL_CATEGORIES)))

    return await _all(d, caching.TREE, caching.TREE_TTL, "tree", read)


async def category(d: Deps, category_id: uuid.UUID) -> Representation:
    return await _by_id(
        d, caching.TREE, caching.TREE_TTL, "category", category_id, store.CATEGORY, documents.category
    )


async def brands(d: Deps) -> Representation:
    async def read(conn: asyncpg.Connection) -> bytes:
        return encode([documents.brand(row) for row in await conn.fetch(store.ALL_BRANDS)])

    return await _all(d, caching.BRANDS, caching.BRANDS_TTL, "brands", read)


async def brand(d: Deps, brand_id: uuid.UUID) -> Representation:
    return await _by_id(
        d, caching.BRANDS, caching.BRANDS_TTL, "brand", brand_id, store.BRAND, documents.brand
    )
