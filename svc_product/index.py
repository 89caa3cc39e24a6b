"""The public catalog held in the process, column by column, for search, facets and suggestions.

A search with facets in SQL reads and groups every match (10-40 ms of PostgreSQL for a broad word over
the demo catalog), so 500 a second cannot come from two cores. The active products fit in memory: each
process keeps them as numpy columns (price, rating, category, brand, stock, ...), the words of their
documents as postings (each word's products, words in byte order so a prefix is a slice), their
variants' attributes, and the sort orders PostgreSQL gives them (its collation, its ties), all read in
one repeatable-read transaction. svc_product.search answers from it.

It is never served stale: the index carries the generation of the catalog it was read at (`Holder`),
moved on by every write of this process (caching.Invalidator) and by any newer version of the lists'
cache namespace a request or the `follow` job (every 0.1 s) sees in Redis; while the index is behind,
requests are answered from PostgreSQL as before and one rebuild runs. A rebuild reads the whole catalog
again (0.9-2.6 s on the shared 2-core machine at a load average of 13): fine while writes come seconds
apart, not for a catalog written many times a second (then: read only the rows changed since, by
transaction id).
"""

from __future__ import annotations

import asyncio
import bisect
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from svc_product import documents, typos
from svc_product.schemas import ProductSummary
from svc_product.typos import Spelling

rebuilds = Counter("shop_catalog_index_rebuilds_total", "Reads of the whole catalog into the process")
rebuild_seconds = Histogram("shop_catalog_index_rebuild_seconds", "Time to read the catalog into the process")

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

_ACTIVE = "p.deleted_at IS NULL AND p.status = 'active'"
# Slot i is the i-th active product by id: `ORDER BY p.id` of the SQL list is slot order.
PRODUCTS = f"""
SELECT p.id, p.name, p.slug, p.price::float8 AS price, p.status, p.seller_id, p.category_id, p.brand_id,
       p.rating::float8 AS rating, p.review_count, p.created_at, p.updated_at, p.in_stock, p.folded_name,
       (SELECT url FROM product_images i WHERE i.product_id = p.id ORDER BY i.position LIMIT 1) AS image,
       row_number() OVER (ORDER BY p.price, p.id) - 1 AS by_price,
       row_number() OVER (ORDER BY p.name, p.id) - 1 AS by_name,
       row_number() OVER (ORDER BY p.created_at, p.id) - 1 AS by_created,
       row_number() OVER (ORDER BY p.rating, p.id) - 1 AS by_rating,
       row_number() OVER (ORDER BY p.review_count DESC, p.rating DESC, p.name, p.id) - 1 AS by_popularity
FROM products p WHERE {_ACTIVE}
ORDER BY p.id
"""
# Each word of the documents (all of it, or the name: weight A) with the slots of its products.
_POSTINGS = f"""
WITH p AS (SELECT row_number() OVER (ORDER BY p.id) - 1 AS slot, {{document}} AS document
           FROM products p WHERE {_ACTIVE})
SELECT w.word COLLATE "C" AS word, array_agg(p.slot ORDER BY p.slot) AS slots
FROM p CROSS JOIN LATERAL unnest(tsvector_to_array(p.document)) AS w(word)
GROUP BY 1 ORDER BY 1
"""
WORDS = _POSTINGS.format(document="p.document")
NAME_WORDS = _POSTINGS.format(document="ts_filter(p.document, '{a}')")
VARIANTS = f"""
WITH p AS (SELECT row_number() OVER (ORDER BY p.id) - 1 AS slot, p.id FROM products p WHERE {_ACTIVE})
SELECT p.slot, v.id AS variant, kv.key AS name, kv.value,
       dense_rank() OVER (ORDER BY kv.key, kv.value) - 1 AS pair
FROM p JOIN product_variants v ON v.product_id = p.id CROSS JOIN LATERAL jsonb_each_text(v.attributes) AS kv
ORDER BY pair
"""
# Categories and brands with what their facets and suggestions order them by.
_NAMED = """
SELECT t.id, t.name, t.slug, {parent} AS parent_id, catalog_fold(t.name) AS folded,
       tsvector_to_array(to_tsvector('simple', catalog_fold(t.name))) AS words,
       row_number() OVER (ORDER BY t.name) - 1 AS by_name,
       row_number() OVER (ORDER BY length(t.name), t.name) - 1 AS by_length
FROM {table} t
"""
CATEGORIES = _NAMED.format(parent="t.parent_id", table="categories")
BRANDS = _NAMED.format(parent="NULL::uuid", table="brands")
FOLD = "SELECT catalog_fold($1)"

# Spelling answers kept per index, and packed suggestion answers (both cleared by a rebuild).
_MAX_REMEMBERED = 20_000


@dataclass
class Postings:
    """Words in byte order and, per word, its products' slots (`slots[offsets[i]:offsets[i + 1]]`)."""

    words: list[str]
    offsets: Ints
    slots: Ints

    @classmethod
    def of(cls, rows: Sequence[asyncpg.Record]) -> Postings:
        lengths = [len(row["slots"]) for row in rows]
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((s for row in rows for s in row["slots"]), np.int64, int(offsets[-1]))
        return cls([row["word"] for row in rows], offsets, flat)

    def prefixed(self, prefix: str, into: Mask) -> Mask:
        """`into` with the products of every word starting with `prefix` set."""
        low = bisect.bisect_left(self.words, prefix)
        high = bisect.bisect_left(self.words, prefix + "\U0010ffff", low)
        into[self.slots[self.offsets[low] : self.offsets[high]]] = True
        return into

    def exact(self, word: str, into: Mask) -> Mask:
        at = bisect.bisect_left(self.words, word)
        if at < len(self.words) and self.words[at] == word:
            into[self.slots[self.offsets[at] : self.offsets[at + 1]]] = True
        return into

    def knows(self, prefix: str) -> bool:
        """Whether a word starts with `prefix`."""
        at = bisect.bisect_left(self.words, prefix)
        return at < len(self.words) and self.words[at].startswith(prefix)


@dataclass
class Named:
    """Categories or brands: ids, names, and what their facets and suggestions sort by."""

    rows: list[asyncpg.Record]
    position: dict[uuid.UUID, int] = field(init=False)
    by_name: Ints = field(init=False)
    by_length: Ints = field(init=False)

    def __post_init__(self) -> None:
        self.position = {row["id"]: i for i, row in enumerate(self.rows)}
        self.by_name = np.array([row["by_name"] for row in self.rows], np.int64)
        self.by_length = np.array([row["by_length"] for row in self.rows], np.int64)


@dataclass
class Attributes:
    """Variant attributes: `pairs` (name, value) in PostgreSQL's order; per pair its variants; per variant
    its product's slot; `has` (pair x product) for the common case without attribute filters."""

    pairs: list[tuple[str, str]]
    names: dict[str, list[int]]
    pair_variants: list[Ints]
    variant_slot: Ints
    has: Mask

    @classmethod
    def of(cls, rows: Sequence[asyncpg.Record], size: int) -> Attributes:
        variants: dict[uuid.UUID, int] = {}
        slots: list[int] = []
        pairs: list[tuple[str, str]] = []
        members: list[list[int]] = []
        for row in rows:
            if row["pair"] == len(pairs):
                pairs.append((row["name"], row["value"]))
                members.append([])
            number = variants.setdefault(row["variant"], len(variants))
            if number == len(slots):
                slots.append(row["slot"])
            members[-1].append(number)
        variant_slot = np.array(slots, np.int64)
        has = np.zeros((len(pairs), size), np.bool_)
        for pair, numbers in enumerate(members):
            has[pair, variant_slot[numbers]] = True
        names: dict[str, list[int]] = {}
        for pair, (name, _) in enumerate(pairs):
            names.setdefault(name, []).append(pair)
        return cls(pairs, names, [np.array(m, np.int64) for m in members], variant_slot, has)

    def satisfying(self, name: str, values: Sequence[str]) -> Mask:
        """The variants whose attribute `name` is one of `values`."""
        chosen = np.zeros(len(self.variant_slot), np.bool_)
        for pair in self.names.get(name, ()):
            if self.pairs[pair][1] in values:
                chosen[self.pair_variants[pair]] = True
        return chosen


class CatalogIndex:
    """The active products as columns (slot = position by id), read at one moment of the catalog."""

    def __init__(
        self,
        generation: int,
        products: list[asyncpg.Record],
        words: Postings,
        name_words: Postings,
        attributes: Attributes,
        categories: Named,
        brands: Named,
    ) -> None:
        self.generation = generation
        self.size = len(products)
        self.summaries = [documents.summary(row) for row in products]
        self.folded_names = [row["folded_name"] for row in products]
        self.price = np.array([row["price"] for row in products], np.float64)
        self.rating = np.array([row["rating"] for row in products], np.float64)
        self.in_stock = np.array([row["in_stock"] for row in products], np.bool_)
        self.category = np.array([categories.position[row["category_id"]] for row in products], np.int64)
        brand_of = brands.position.get
        self.brand = np.array([brand_of(row["brand_id"], -1) for row in products], np.int64)
        sellers: dict[uuid.UUID, int] = {}
        self.seller = np.array([sellers.setdefault(row["seller_id"], len(sellers)) for row in products])
        self.sellers = sellers
        # Slots in each sort order, ascending (a descending order is the same read backwards).
        self.orders = {
            name: np.argsort(np.array([row[column] for row in products], np.int64))
            for name, column in (
                ("price", "by_price"),
                ("name", "by_name"),
                ("createdAt", "by_created"),
                ("rating", "by_rating"),
                ("popularity", "by_popularity"),
            )
        }
        self.popularity = np.empty(self.size, np.int64)
        self.popularity[self.orders["popularity"]] = np.arange(self.size)
        self.review_count = np.array([row["review_count"] for row in products], np.int64)
        self.words = words
        self.name_words = name_words
        # Every folded name on a line of its own: a fragment is found by one scan of one string.
        self.names_text = "\n".join(self.folded_names)
        self.line_starts = np.cumsum([0, *(len(name) + 1 for name in self.folded_names[:-1])])
        # Folded names in byte order with their slots: the products whose name starts with a text.
        order = sorted(range(self.size), key=self.folded_names.__getitem__)
        self.names_sorted = [self.folded_names[i] for i in order]
        self.names_slots = np.array(order, np.int64)
        self.attributes = attributes
        self.categories = categories
        self.brands = brands
        # below[c, d]: category d is c or under it.
        count = len(categories.rows)
        self.below = np.eye(count, dtype=np.bool_)
        parent = [categories.position.get(row["parent_id"], -1) for row in categories.rows]
        for start in range(count):
            up = parent[start]
            while up >= 0:
                self.below[up, start] = True
                up = parent[up]
        self.remembered: dict[object, object] = {}

    def none(self) -> Mask:
        return np.zeros(self.size, np.bool_)

    def named_starting(self, text: str) -> Mask:
        """The products whose folded name starts with `text`."""
        low = bisect.bisect_left(self.names_sorted, text)
        high = bisect.bisect_left(self.names_sorted, text + "\U0010ffff", low)
        found = self.none()
        found[self.names_slots[low:high]] = True
        return found

    def containing(self, fragment: str) -> Mask:
        """The products whose folded name contains `fragment` (words of a search: no line break)."""
        if not fragment:
            return np.ones(self.size, np.bool_)
        found = self.none()
        starts = [match.start() for match in re.finditer(re.escape(fragment), self.names_text)]
        found[np.searchsorted(self.line_starts, starts, side="right") - 1] = True
        return found

    def summary(self, slot: int) -> ProductSummary:
        return self.summaries[slot]

    def remember(self, key: object, value: object) -> None:
        if len(self.remembered) >= _MAX_REMEMBERED:
            self.remembered.clear()
        self.remembered[key] = value

    async def spelling(self, pool: asyncpg.Pool, words: Sequence[str]) -> Spelling:
        """typos.spelling of `words`, each word looked up once per index (the vocabulary is the index's)."""
        missing = [w for w in dict.fromkeys(words) if ("spelling", w) not in self.remembered]
        if missing:
            async with pool.acquire() as conn:
                found = await typos.spelling(conn, missing)
            for word, folded, options in zip(missing, found.words, found.alternatives, strict=True):
                self.remember(("spelling", word), (folded, options))
        pairs: list[Any] = [self.remembered[("spelling", w)] for w in words]
        return Spelling(
            words=tuple(folded for folded, _ in pairs), alternatives=tuple(options for _, options in pairs)
        )

    async def fold(self, pool: asyncpg.Pool, text: str) -> str:
        """`text` folded as the catalog folds names (catalog_fold: lower case, no accents)."""
        key = ("fold", text)
        if key not in self.remembered:
            async with pool.acquire() as conn:
                self.remember(key, await conn.fetchval(FOLD, text))
        folded = self.remembered[key]
        assert isinstance(folded, str)
        return folded


async def read(pool: asyncpg.Pool, generation: int) -> CatalogIndex:
    """The active catalog as it stands, in one snapshot; put together in a thread, so the requests of
    the event loop go on meanwhile (numpy lets go of the GIL, the interpreter switches every 5 ms)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        products = await conn.fetch(PRODUCTS)
        words = await conn.fetch(WORDS)
        name_words = await conn.fetch(NAME_WORDS)
        variants = await conn.fetch(VARIANTS)
        categories = await conn.fetch(CATEGORIES)
        brands = await conn.fetch(BRANDS)

    def build() -> CatalogIndex:
        return CatalogIndex(
            generation,
            products,
            Postings.of(words),
            Postings.of(name_words),
            Attributes.of(variants, len(products)),
            Named(categories),
            Named(brands),
        )

    return await asyncio.to_thread(build)


class Holder:
    """The process's index and the newest generation of the catalog it knows of.

    `generation` moves on whenever the catalog may have changed: a write of this process (`changed`), or
    a version of the lists' namespace newer than the last one seen (`saw`). `ready()` is the index when
    it was read after the latest of those, else None (the caller asks PostgreSQL) while one rebuild runs
    in the background: a write never makes requests wait for the whole catalog to be read again.
    """

    def __init__(self) -> None:
        self.index: CatalogIndex | None = None
        self.generation = 1
        self.version: int | None = None
        # Until when the index may be taken as current without asking Redis (`follow` asked it lately).
        self.followed_until = 0.0
        self._rebuild: asyncio.Task[CatalogIndex] | None = None

    def changed(self) -> None:
        self.generation += 1

    def saw(self, version: int) -> None:
        """The lists' namespace is at `version` in Redis."""
        if version != self.version:
            self.version = version
            self.changed()

    def ready(self, pool: asyncpg.Pool) -> CatalogIndex | None:
        if self.index is not None and self.index.generation >= self.generation:
            return self.index
        self._start(pool)
        return None

    async def current(self, pool: asyncpg.Pool) -> CatalogIndex:
        """The index once it is current (the `follow` job waits for it)."""
        while (index := self.ready(pool)) is None:
            assert self._rebuild is not None
            # Shielded: the caller's cancellation must not cancel the rebuild others count on.
            await asyncio.shield(self._rebuild)
        return index

    async def stop(self) -> None:
        """Cancel a rebuild still running (the process stops)."""
        if self._rebuild is not None and not self._rebuild.done():
            self._rebuild.cancel()
            await asyncio.gather(self._rebuild, return_exceptions=True)

    def _start(self, pool: asyncpg.Pool) -> None:
        if self._rebuild is None or self._rebuild.done():
            self._rebuild = asyncio.create_task(self._read(pool, self.generation))
            self._rebuild.add_done_callback(_retrieved)

    async def _read(self, pool: asyncpg.Pool, generation: int) -> CatalogIndex:
        loop = asyncio.get_running_loop()
        began = loop.time()
        index = await read(pool, generation)
        self.index = index
        rebuilds.inc()
        rebuild_seconds.observe(loop.time() - began)
        return index


def _retrieved(rebuild: asyncio.Task[CatalogIndex]) -> None:
    """A failed rebuild's error is logged by the `follow` job (catalog.py), which waits for every rebuild
    within 0.1 s; marked as seen here too, so asyncio does not report it again."""
    if not rebuild.cancelled():
        rebuild.exception()


holder = Holder()
