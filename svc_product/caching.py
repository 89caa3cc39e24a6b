"""How svc_product uses Redis: key names and lifetimes, invalidation on writes, shared stats, purge.

Keys (architecture.md, "Cache Key Conventions"), each inside a versioned namespace of kit.cache, so a
write invalidates by bumping a version (one INCR) instead of finding keys with KEYS or SCAN:

    product:{id}:v{n}:detail             a product's detail document             60 min
    product:{id}:reviews:v{n}:{query}    a page of its reviews                   15 min
    product:list:v{n}:{query}            a page of the public product list       15 min
                                         without a search (with its facets when
                                         asked for); the version also tells each
                                         process's catalog index (svc_product.index)
                                         that the catalog changed
    category:tree:v{n}:all | :{id}       the category tree, one category         120 min
    brand:list:v{n}:all | :{id}          every brand, one brand                  120 min

A product has a namespace of its own, so a write bumps it after its commit and then reloads the document
through the cache: a reader that loaded the old row before the commit can only have written under the
old version, which nobody reads again (so the write is visible on the next read, race or not).
"""

from __future__ import annotations

import logging
import re
import uuid
import weakref
from collections.abc import Iterable

from redis.exceptions import RedisError

from kit.app import Deps
from kit.cache import Cache
from kit.errors import invalid
from kit.lifecycle import every
from svc_product import index
from svc_product.schemas import CacheStats

log = logging.getLogger(__name__)

DETAIL_TTL = 60 * 60
LIST_TTL = 15 * 60
REVIEWS_TTL = 15 * 60
TREE_TTL = 120 * 60
BRANDS_TTL = 120 * 60

LISTS = "product:list"
TREE = "category:tree"
BRANDS = "brand:list"
DETAIL = "detail"
ALL = "all"
# The roots of every key this service writes; a purge stays inside them (other services share Redis).
ROOTS = ("product:", "category:", "brand:")
STATS_KEY = "stats:cache:product"
# An entry's key holds its namespace's version (`...:v12:...`); a key without one is a version counter.
_ENTRY = re.compile(rb":v\d+:")
_COUNTERS = ("hits", "misses", "errors")


def product_namespace(product_id: uuid.UUID | str) -> str:
    return f"product:{product_id}"


def reviews_namespace(product_id: uuid.UUID | str) -> str:
    return f"product:{product_id}:reviews"


class Invalidator:
    """Bumps namespaces in one round trip; what Redis could not take is retried every second until it can,
    so a write made during a Redis outage is not hidden behind an old entry once Redis is back.
    """

    def __init__(self) -> None:
        self.pending: set[str] = set()

    async def bump(self, cache: Cache, namespaces: Iterable[str]) -> None:
        names = set(namespaces)
        if not names:
            return
        if LISTS in names:
            index.holder.changed()
        if cache.redis is None or not cache.available:
            self.pending |= names
            cache.forget(names)
            return
        ordered = sorted(names)
        try:
            async with cache.redis.pipeline(transaction=False) as pipe:
                for name in ordered:
                    pipe.incr(name)
                versions = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.pending |= names
            log.warning("invalidation deferred until Redis answers", extra={"error": repr(exc)})
            return
        finally:
            # After the bump, as in Cache.bump: a lookup of this process that read the old version
            # before it must not leave that value held near (its epoch is older than this forget).
            cache.forget(names)
        if LISTS in names:
            # This process's index follows its own writes at once (others see the version within 0.1 s).
            index.holder.saw(int(versions[ordered.index(LISTS)]))

    async def retry(self, cache: Cache) -> None:
        if self.pending and cache.available:
            names, self.pending = self.pending, set()
            await self.bump(cache, names)


invalidator = Invalidator()


async def product_changed(cache: Cache, product_id: uuid.UUID) -> None:
    """A product changed: its detail, every public list, and its review pages (shown while it is active)."""
    await invalidator.bump(cache, [LISTS, product_namespace(product_id), reviews_namespace(product_id)])


async def reviews_changed(cache: Cache, product_id: uuid.UUID) -> None:
    """A review was added: the product's rating (detail and lists) and its review pages."""
    await invalidator.bump(cache, [LISTS, product_namespace(product_id), reviews_namespace(product_id)])


async def stock_changed(cache: Cache) -> None:
    """A product came into or went out of stock: the lists (their in-stock filter and facet)."""
    await invalidator.bump(cache, [LISTS])


async def authors_changed(cache: Cache, product_ids: Iterable[uuid.UUID]) -> None:
    """A reviewer's name changed: the review pages that show it."""
    await invalidator.bump(cache, map(reviews_namespace, product_ids))


async def categories_changed(cache: Cache, product_ids: Iterable[uuid.UUID]) -> None:
    """The tree changed: the tree, the lists (a category filter covers its sub-categories) and the details
    of the products below the category (they show its path)."""
    await invalidator.bump(cache, [TREE, LISTS, *map(product_namespace, product_ids)])


async def brands_changed(cache: Cache, product_ids: Iterable[uuid.UUID]) -> None:
    """A brand changed: the brands, the details of its products and the lists (their facets and the
    suggestions show its name)."""
    await invalidator.bump(cache, [BRANDS, LISTS, *map(product_namespace, product_ids)])


class Stats:
    """Hit and miss totals over every process: each adds what it counted since its last flush to one
    Redis hash once a second (a lookup itself never pays a round trip for its statistics).
    """

    def __init__(self) -> None:
        self._flushed: weakref.WeakKeyDictionary[Cache, tuple[int, ...]] = weakref.WeakKeyDictionary()

    def _unflushed(self, cache: Cache) -> tuple[int, ...]:
        done = self._flushed.get(cache, (0, 0, 0))
        return tuple(getattr(cache, name) - before for name, before in zip(_COUNTERS, done, strict=True))

    async def flush(self, cache: Cache) -> None:
        deltas = self._unflushed(cache)
        if cache.redis is None or not any(deltas) or not cache.available:
            return
        try:
            async with cache.redis.pipeline(transaction=False) as pipe:
                for name, delta in zip(_COUNTERS, deltas, strict=True):
                    pipe.hincrby(STATS_KEY, name, delta)
                await pipe.execute()
        except (RedisError, OSError):
            return  # counted again at the next flush
        self._flushed[cache] = tuple(getattr(cache, name) for name in _COUNTERS)

    async def totals(self, cache: Cache) -> CacheStats:
        """Every process's flushed counts plus this process's latest ones (others lag by a second at most)."""
        shared: dict[bytes | str, bytes | str] = {}
        reachable = cache.redis is not None and cache.available
        if cache.redis is not None and reachable:
            try:
                shared = await cache.redis.hgetall(STATS_KEY)
            except (RedisError, OSError):
                reachable = False
        local = self._unflushed(cache)
        hits, misses, errors = (
            int(shared.get(name.encode(), 0)) + mine for name, mine in zip(_COUNTERS, local, strict=True)
        )
        lookups = hits + misses
        return CacheStats(
            hits=hits,
            misses=misses,
            errors=errors,
            hit_ratio=round(hits / lookups, 4) if lookups else 0.0,
            redis_available=reachable,
        )


stats = Stats()


async def upkeep(deps: Deps) -> None:
    """Background job: retry deferred invalidations and flush the statistics, once a second."""
    cache = deps.cache
    assert cache is not None

    async def tend() -> None:
        await invalidator.retry(cache)
        await stats.flush(cache)

    await every(1.0, tend, name="cache-upkeep")


def purge_targets(prefix: str) -> list[str]:
    """The prefixes a purge of `prefix` deletes: itself inside our roots, or the roots it starts
    ("prod" purges `product:`, "" all three), never another service's keys."""
    if any(prefix.startswith(root) for root in ROOTS):
        return [prefix]
    targets = [root for root in ROOTS if root.startswith(prefix)]
    if not targets:
        raise invalid("prefix", f"prefix must start with one of {', '.join(ROOTS)}")
    return targets


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def purge(cache: Cache, prefix: str) -> int:
    """Delete every cached entry whose key starts with `prefix` (an admin operation, so SCAN is fine here).

    The version counters stay: were one deleted, its namespace would count again from 0 and could reach
    a version whose old entry is still alive, serving it as new. Entries of any version are deleted,
    and their namespaces bumped: what every process holds near of them (kit.near) goes too.
    """
    assert cache.redis is not None
    deleted = 0
    batch: list[bytes] = []
    namespaces: set[str] = set()
    async for key in cache.redis.scan_iter(match=f"{_glob_escape(prefix)}*", count=1000):
        if entry := _ENTRY.search(key):
            batch.append(key)
            namespaces.add(key[: entry.start()].decode())
        if len(batch) >= 500:
            deleted += await cache.redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await cache.redis.unlink(*batch)
    await invalidator.bump(cache, namespaces)
    return deleted
