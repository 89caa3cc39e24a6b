"""The process's catalog index (svc_product.columns): read whole at start, then kept current by reading
only what changed.

It is never served stale: the index carries the generation of the catalog it was read at (`Holder`),
moved on by every write of this process (caching.Invalidator) and by any newer version of the lists'
cache namespace a request or the `follow` job (every 0.1 s) sees in Redis. A request that finds the
index behind waits for it to be brought up to date: the products changed by the transactions the
index's PostgreSQL snapshot did not see (table `catalog_changes`, filled by triggers) are read again in
one repeatable-read transaction and applied (`CatalogIndex.updated`, a few ms). The whole catalog is
read again (0.9-2.6 s on the shared 2-core machine; requests are answered from PostgreSQL meanwhile)
only at start, when too much changed at once (`MAX_CHANGED`), when categories' or brands' rows are beyond
a re-read (a table emptied), or when the index is older than the change log keeps (`READ_WHOLE_AFTER`);
and in the background (the index stays in use) once `COMPACT_AFTER` slots were added since the last.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import timedelta

import asyncpg
from prometheus_client import Counter, Histogram

from svc_product.columns import CatalogIndex, Named, Seen
from svc_product.postings import NO_ATTRIBUTES, Postings

log = logging.getLogger(__name__)

rebuilds = Counter("shop_catalog_index_rebuilds_total", "Reads of the whole catalog into the process")
rebuild_seconds = Histogram("shop_catalog_index_rebuild_seconds", "Time to read the catalog into the process")
updates = Counter("shop_catalog_index_updates_total", "Reads of what changed in the catalog into the index")
update_seconds = Histogram(
    "shop_catalog_index_update_seconds",
    "Time to read what changed in the catalog and apply it to the index",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

# More products changed than this since the index's snapshot: read it whole.
MAX_CHANGED = 200
# Slots added since the last whole read (one per product written, however often) beyond which one is
# made in the background: each update regroups the words of the live ones (~30 each) and sorts them all.
COMPACT_AFTER = 1000
# An index read longer ago than this is read whole; the change log keeps rows twice as long (`PRUNE`).
READ_WHOLE_AFTER = timedelta(minutes=5)
# How often an idle process moves its index's snapshot on (an empty update), so it stays within the log.
REFRESH_EVERY = 60.0

_ACTIVE = "{p}.deleted_at IS NULL AND {p}.status = 'active'"
_SUMMARY = """
p.id, p.name, p.slug, p.price::float8 AS price, p.status, p.seller_id, p.category_id, p.brand_id,
p.rating::float8 AS rating, p.review_count, p.created_at, p.updated_at, p.in_stock, p.folded_name,
(SELECT url FROM product_images i WHERE i.product_id = p.id ORDER BY i.position LIMIT 1) AS image
"""
SEEN = "SELECT pg_current_snapshot()::text AS snapshot, now() AS at"
# Slot i is the i-th active product by id.
PRODUCTS = f"""
SELECT {_SUMMARY}, row_number() OVER (ORDER BY p.name, p.id) - 1 AS by_name
FROM products p WHERE {_ACTIVE.format(p="p")}
ORDER BY p.id
"""
# Each word of the documents (all of it, or the name: weight A) with the slots of its products.
_POSTINGS = f"""
WITH p AS (SELECT row_number() OVER (ORDER BY p.id) - 1 AS slot, {{document}} AS document
           FROM products p WHERE {_ACTIVE.format(p="p")})
SELECT w.word COLLATE "C" AS word, array_agg(p.slot ORDER BY p.slot) AS slots
FROM p CROSS JOIN LATERAL unnest(tsvector_to_array(p.document)) AS w(word)
GROUP BY 1 ORDER BY 1
"""
WORDS = _POSTINGS.format(document="p.document")
NAME_WORDS = _POSTINGS.format(document="ts_filter(p.document, '{a}')")
VARIANTS = f"""
WITH p AS (SELECT row_number() OVER (ORDER BY p.id) - 1 AS slot, p.id
           FROM products p WHERE {_ACTIVE.format(p="p")})
SELECT p.slot, v.id AS variant, kv.key AS name, kv.value,
       dense_rank() OVER (ORDER BY kv.key, kv.value) - 1 AS pair
FROM p JOIN product_variants v ON v.product_id = p.id CROSS JOIN LATERAL jsonb_each_text(v.attributes) AS kv
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

# What the transactions a snapshot did not see changed (at most $2 rows).
CHANGED = """
SELECT DISTINCT what, product_id FROM catalog_changes
WHERE xact >= pg_snapshot_xmin($1::text::pg_snapshot)
  AND NOT pg_visible_in_snapshot(xact, $1::text::pg_snapshot)
LIMIT $2
"""
# The changed products still active, in name order, each with the unchanged one before it in that order.
CHANGED_PRODUCTS = f"""
SELECT {_SUMMARY}, tsvector_to_array(p.document) AS words,
       tsvector_to_array(ts_filter(p.document, '{{a}}')) AS name_words,
       (SELECT q.id FROM products q
        WHERE {_ACTIVE.format(p="q")} AND (q.name, q.id) < (p.name, p.id) AND q.id <> ALL($1::uuid[])
        ORDER BY q.name DESC, q.id DESC LIMIT 1) AS after
FROM products p WHERE p.id = ANY($1::uuid[]) AND {_ACTIVE.format(p="p")}
ORDER BY p.name, p.id
"""
CHANGED_VARIANTS = f"""
SELECT v.product_id, v.id AS variant, kv.key AS name, kv.value
FROM products p JOIN product_variants v ON v.product_id = p.id
     CROSS JOIN LATERAL jsonb_each_text(v.attributes) AS kv
WHERE p.id = ANY($1::uuid[]) AND {_ACTIVE.format(p="p")}
"""
# Attribute pairs in PostgreSQL's order (their collation), when new ones came.
PAIR_ORDER = """
SELECT k AS name, v AS value, row_number() OVER (ORDER BY k, v) - 1 AS rank
FROM unnest($1::text[], $2::text[]) AS t(k, v)
"""
PRUNE = "DELETE FROM catalog_changes WHERE at < now() - 2 * $1::interval"


async def read(pool: asyncpg.Pool) -> CatalogIndex:
    """The active catalog as it stands, in one snapshot; put together in a thread, so the requests of
    the event loop go on meanwhile (numpy lets go of the GIL, the interpreter switches every 5 ms)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        seen = Seen(**dict(await conn.fetchrow(SEEN)))
        products = await conn.fetch(PRODUCTS)
        words = await conn.fetch(WORDS)
        name_words = await conn.fetch(NAME_WORDS)
        variants = await conn.fetch(VARIANTS)
        categories = await conn.fetch(CATEGORIES)
        brands = await conn.fetch(BRANDS)

    def build() -> CatalogIndex:
        attributes = NO_ATTRIBUTES.added(
            [(row["slot"], row["variant"], row["name"], row["value"]) for row in variants],
            len(products),
            {(row["name"], row["value"]): row["pair"] for row in variants},
        )
        return CatalogIndex.whole(
            seen,
            products,
            Postings.of(words),
            Postings.of(name_words),
            attributes,
            Named(categories),
            Named(brands),
        )

    return await asyncio.to_thread(build)


async def updated(pool: asyncpg.Pool, index: CatalogIndex) -> CatalogIndex | None:
    """`index` with what changed since its snapshot, read in one snapshot; None when it must be read
    whole instead (too much or something beyond products changed, or it is older than the log)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        seen = Seen(**dict(await conn.fetchrow(SEEN)))
        if seen.at - index.seen.at > READ_WHOLE_AFTER:
            log.info(
                "catalog index too old to update, read whole", extra={"readAt": index.seen.at.isoformat()}
            )
            return None
        changes = await conn.fetch(CHANGED, index.seen.snapshot, MAX_CHANGED + 1)
        what = {change["what"] for change in changes}
        if len(changes) > MAX_CHANGED or "all" in what:
            log.info(
                "too much changed in the catalog to update its index, read whole",
                extra={"what": sorted(what)},
            )
            return None
        ids = [change["product_id"] for change in changes if change["product_id"] is not None]
        products = await conn.fetch(CHANGED_PRODUCTS, ids) if ids else []
        variants = await conn.fetch(CHANGED_VARIANTS, ids) if ids else []
        categories = Named(await conn.fetch(CATEGORIES)) if "categories" in what else None
        brands = Named(await conn.fetch(BRANDS)) if "brands" in what else None
        known = index.attributes.position
        new_pairs = {(row["name"], row["value"]) for row in variants} - known.keys()
        ranks = None
        if new_pairs:
            pairs = [*known, *sorted(new_pairs)]
            ordered = await conn.fetch(PAIR_ORDER, [k for k, _ in pairs], [v for _, v in pairs])
            ranks = {(row["name"], row["value"]): row["rank"] for row in ordered}
    if not changes:
        return index.moved_on(seen)

    def apply() -> CatalogIndex | None:
        try:
            return index.updated(seen, ids, products, variants, ranks, categories, brands)
        except KeyError as missing:
            # A product the index should hold is not there: it cannot be patched, only read again.
            log.warning("catalog index out of step, read whole", extra={"product": str(missing)})
            return None

    return await asyncio.to_thread(apply)


async def prune(pool: asyncpg.Pool) -> None:
    """Forget changes older than any index may still need (`READ_WHOLE_AFTER`, twice over)."""
    await pool.execute(PRUNE, READ_WHOLE_AFTER)


class Holder:
    """The process's index and the newest generation of the catalog it knows of.

    `generation` moves on whenever the catalog may have changed: a write of this process (`changed`), or
    a version of the lists' namespace newer than the last one seen (`saw`). `fresh()` is the index once
    it holds everything written before that, or None (the caller asks PostgreSQL) while the whole catalog
    is read again. Updates and the installing of a whole read take turns (`_turn`).
    """

    def __init__(self) -> None:
        self.index: CatalogIndex | None = None
        self.generation = 1
        self.version: int | None = None
        # Until when the index may be taken as current without asking Redis (`follow` asked it lately).
        self.followed_until = 0.0
        self._turn = asyncio.Lock()
        self._update: asyncio.Task[None] | None = None
        self._whole: asyncio.Task[None] | None = None

    def changed(self) -> None:
        self.generation += 1

    def saw(self, version: int) -> None:
        """The lists' namespace is at `version` in Redis."""
        if version != self.version:
            self.version = version
            self.changed()

    def current(self) -> CatalogIndex | None:
        """The index if nothing was written since it was brought up to date."""
        index = self.index
        return index if index is not None and index.generation >= self.generation else None

    async def fresh(self, pool: asyncpg.Pool) -> CatalogIndex | None:
        """The index, brought up to date first if it is behind (a few ms); None while it is read whole."""
        if (index := self.current()) is not None:
            return index
        # Twice at most: an update already under way may have begun before the write this one must see.
        for _ in range(2):
            if self.index is None:
                self._read_whole(pool)
                return None
            if self._update is None or self._update.done():
                self._update = asyncio.create_task(self._bring_up_to_date(pool))
                self._update.add_done_callback(_retrieved)
            # Shielded: the caller's cancellation must not cancel the update others wait for.
            await asyncio.shield(self._update)
            if (index := self.current()) is not None:
                return index
        return None

    async def whole(self, pool: asyncpg.Pool) -> CatalogIndex:
        """The index once it is current, read whole if need be (the `follow` job waits for it)."""
        while (index := await self.fresh(pool)) is None:
            if self._whole is not None:
                await asyncio.shield(self._whole)
        return index

    async def stop(self) -> None:
        """Cancel an update or a whole read still running (the process stops)."""
        running = [task for task in (self._update, self._whole) if task is not None and not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._turn = asyncio.Lock()  # the next event loop's (tests start the service again)

    async def _bring_up_to_date(self, pool: asyncpg.Pool) -> None:
        async with self._turn:
            # Everything acknowledged before this generation was committed before the snapshot read next.
            generation = self.generation
            if (index := self.index) is None:
                self._read_whole(pool)
                return
            began = asyncio.get_running_loop().time()
            new = await updated(pool, index)
            if new is None:
                self.index = None  # behind and not patchable: PostgreSQL answers until the whole read
                self._read_whole(pool)
                return
            new.generation = generation
            self.index = new
            updates.inc()
            update_seconds.observe(asyncio.get_running_loop().time() - began)
            if new.size - new.whole_size > COMPACT_AFTER:
                self._read_whole(pool)

    def _read_whole(self, pool: asyncpg.Pool) -> None:
        if self._whole is None or self._whole.done():
            self._whole = asyncio.create_task(self._read(pool))
            self._whole.add_done_callback(_retrieved)

    async def _read(self, pool: asyncpg.Pool) -> None:
        """Read the whole catalog, then (in turn with updates) catch it up with what changed meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            whole = await read(pool)
            async with self._turn:
                generation = self.generation
                caught_up = await updated(pool, whole)
                if caught_up is not None:
                    caught_up.generation = generation
                    self.index = caught_up
                    # ~50k tracked objects the collector would scan in every full collection (a ~50 ms
                    # pause every few seconds under load): frozen instead. The index holds no cycles
                    # (tests/svc_product/test_index_updates.py), so the one it replaces is freed anyway.
                    gc.freeze()
                    rebuilds.inc()
                    rebuild_seconds.observe(took := loop.time() - began)
                    log.info(
                        "catalog index read whole",
                        extra={"seconds": round(took, 3), "products": len(caught_up.slot_of)},
                    )
                    return


def _retrieved(task: asyncio.Task[None]) -> None:
    """A failed update or read's error reaches whoever waits for it, or the `follow` job (catalog.py),
    which waits for every whole read within 0.1 s; marked as seen here too, so asyncio does not report
    it again."""
    if not task.cancelled():
        task.exception()


holder = Holder()
