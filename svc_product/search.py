"""The public list and the suggestions answered from the process's catalog index (svc_product.index).

The same answers PostgreSQL gives through svc_product.listing, .facets and .suggest (which still serve
the lists beyond active products, and any list while Redis cannot say whether the index is current):
the same matching (every word as a prefix or one of its corrections, else a fragment of the name), the
same filters, sort orders, facets and suggestions; tests/svc_product hold both to it. Each condition is
a boolean column over the products, so a facet is a count of a few ANDed columns (numpy), in
microseconds, not a scan of the matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from kit.http import encode
from svc_product import documents, typos
from svc_product.columns import CatalogIndex
from svc_product.facets import PRICE_BANDS, RATING_BANDS
from svc_product.postings import Ints, Mask, Terms
from svc_product.query import ListQuery
from svc_product.suggest import MAX_PER_GROUP, MAX_SUGGESTIONS, Suggestion, Suggestions
from svc_product.typos import Spelling

FOLD = "SELECT catalog_fold($1)"


@dataclass
class Selection:
    """A list query as columns: `scope` (the search) and a column per filter, by facet name."""

    scope: Mask
    filters: dict[str, Mask] = field(default_factory=dict)
    # Per product: how many words of the search its name has; whether it matches the search as typed.
    rank: Ints | None = None
    literal: Mask | None = None
    # Attribute name -> the variants meeting its filter (the attributes facet leaves out its own name's).
    attributes: dict[str, Mask] = field(default_factory=dict)

    def where(self, leave_out: str | None = None) -> Mask:
        chosen = self.scope.copy()
        for name, column in self.filters.items():
            if name != leave_out:
                chosen &= column
        return chosen


async def spelling(index: CatalogIndex, pool: asyncpg.Pool, words: Sequence[str]) -> Spelling:
    """typos.spelling of `words`, each word looked up once per index (the vocabulary is the index's)."""
    missing = [w for w in dict.fromkeys(words) if ("spelling", w) not in index.remembered]
    if missing:
        async with pool.acquire() as conn:
            found = await typos.spelling(conn, missing)
        for word, folded, options in zip(missing, found.words, found.alternatives, strict=True):
            index.remember(("spelling", word), (folded, options))
    pairs: list[Any] = [index.remembered[("spelling", w)] for w in words]
    return Spelling(
        words=tuple(folded for folded, _ in pairs), alternatives=tuple(options for _, options in pairs)
    )


async def fold(index: CatalogIndex, pool: asyncpg.Pool, text: str) -> str:
    """`text` folded as the catalog folds names (catalog_fold: lower case, no accents)."""
    key = ("fold", text)
    if key not in index.remembered:
        async with pool.acquire() as conn:
            index.remember(key, await conn.fetchval(FOLD, text))
    folded = index.remembered[key]
    assert isinstance(folded, str)
    return folded


def words_matching(
    postings: Terms, size: int, words: Sequence[str], alternatives: Sequence[Sequence[str]]
) -> list[Mask]:
    """Per word, the products with a word it starts, or one of its alternatives (listing.tsquery)."""
    found = []
    for position, word in enumerate(words):
        column = postings.prefixed(word, np.zeros(size, np.bool_))
        for option in alternatives[position] if position < len(alternatives) else ():
            postings.exact(option, column)
        found.append(column)
    return found


def _all(columns: Sequence[Mask], size: int) -> Mask:
    chosen = np.ones(size, np.bool_)
    for column in columns:
        chosen &= column
    return chosen


async def select(
    index: CatalogIndex, pool: asyncpg.Pool, query: ListQuery, spelled: Spelling | None, fragment: bool
) -> Selection:
    """listing.conditions over the index (the public list: active products only)."""
    n = index.size
    selection = Selection(index.alive.copy())
    if query.search is not None and (fragment or not query.words):
        text = await fold(index, pool, query.search)
        selection.scope = index.containing(text)
    elif query.search is not None:
        assert spelled is not None
        found = words_matching(index.words, n, spelled.words, spelled.alternatives)
        selection.scope = _all(found, n) & index.alive
        in_names = words_matching(index.name_words, n, spelled.words, spelled.alternatives)
        selection.rank = np.sum(in_names, axis=0, dtype=np.int64) if in_names else np.zeros(n, np.int64)
        if spelled.corrected:
            selection.literal = _all(words_matching(index.words, n, spelled.words, ()), n)
    if query.seller_id is not None:
        seller = index.sellers.get(query.seller_id, -1)
        selection.filters["seller"] = index.seller == seller
    if query.category_id is not None:
        category = index.categories.position.get(query.category_id)
        below = index.below[category] if category is not None else np.zeros(len(index.below), np.bool_)
        selection.filters["category"] = below[index.category]
    if query.brand_id is not None:
        selection.filters["brand"] = index.brand == index.brands.position.get(query.brand_id, -2)
    if query.min_price is not None or query.max_price is not None:
        low = query.min_price if query.min_price is not None else -np.inf
        high = query.max_price if query.max_price is not None else np.inf
        selection.filters["price"] = (index.price >= low) & (index.price <= high)
    if query.min_rating is not None:
        selection.filters["rating"] = index.rating >= query.min_rating
    if query.in_stock is not None:
        selection.filters["stock"] = index.in_stock == query.in_stock
    for name, values in query.attributes:
        selection.attributes[name] = index.attributes.satisfying(name, values)
    if selection.attributes:
        every = _all(list(selection.attributes.values()), len(index.attributes.variant_slot))
        selection.filters["attributes"] = index.none()
        selection.filters["attributes"][index.attributes.variant_slot[every]] = True
    return selection


def ordered(index: CatalogIndex, query: ListQuery, selection: Selection, where: Mask) -> Ints:
    """The slots of `where` in the list's order (listing.list_statement's ORDER BY)."""
    sort, descending = query.ordering
    if sort == "relevance" and selection.rank is not None:
        slots = np.flatnonzero(where)
        literal = (
            selection.literal[slots] if selection.literal is not None else np.zeros(len(slots), np.bool_)
        )
        keys = (index.id_rank[slots], -index.review_count[slots], -selection.rank[slots], ~literal)
        return slots[np.lexsort(keys)]
    order = index.orders.get(sort, index.orders["createdAt"])
    if descending:
        order = order[::-1]
    return order[where[order]]


async def product_list(index: CatalogIndex, pool: asyncpg.Pool, query: ListQuery) -> bytes:
    """listing.product_page, then the facets asked for, as the list's JSON body."""
    spelled = await spelling(index, pool, query.words) if query.words else None
    fragment = False
    selection = await select(index, pool, query, spelled, fragment)
    where = selection.where()
    if not where.any() and query.search is not None and query.words and len(query.search) >= 3:
        fragment, spelled = True, None
        selection = await select(index, pool, query, spelled, fragment)
        where = selection.where()
    slots = ordered(index, query, selection, where)
    page = slots[query.offset : query.offset + query.page_size]
    items = documents.trimmed([index.summary(int(slot)) for slot in page], query.fields)
    extra: dict[str, object] = {}
    # Only the correction found anything (said where the page has items, as listing does).
    literal = selection.literal
    if len(page) and spelled is not None and literal is not None and not (literal & where).any():
        extra["didYouMean"] = spelled.best()
    if query.facets:
        extra["facets"] = facets(index, query, selection)
    return documents.page(items, query.page, query.page_size, len(slots), **extra)


def facets(index: CatalogIndex, query: ListQuery, selection: Selection) -> dict[str, Any]:
    """svc_product.facets over the index: each facet counts the products passing every filter but its own."""
    answer: dict[str, Any] = {}
    for facet in query.facets:
        kept = selection.where(leave_out=facet)
        if facet == "category":
            answer["category"] = _categories(index, kept)
        elif facet == "brand":
            answer["brand"] = _brands(index, kept)
        elif facet == "price":
            bands = zip(PRICE_BANDS, (*PRICE_BANDS[1:], None), strict=True)
            prices = index.price[kept]
            answer["price"] = [
                {"min": low, "max": high, "count": int(np.count_nonzero((prices >= low) & (prices < top)))}
                for low, high in bands
                for top in (np.inf if high is None else high,)
            ]
        elif facet == "rating":
            ratings = index.rating[kept]
            answer["rating"] = [
                {"min": low, "count": int(np.count_nonzero(ratings >= low))} for low in RATING_BANDS
            ]
        elif facet == "stock":
            stocked = int(np.count_nonzero(index.in_stock[kept]))
            answer["stock"] = [
                {"inStock": True, "count": stocked},
                {"inStock": False, "count": int(np.count_nonzero(kept)) - stocked},
            ]
        elif facet == "attributes":
            answer["attributes"] = _attributes(index, selection, kept)
    return answer


def _categories(index: CatalogIndex, kept: Mask) -> list[dict[str, Any]]:
    """Tree-aware: a category counts the products of its whole subtree; those with none are left out."""
    leaves = np.bincount(index.category[kept], minlength=len(index.below))
    counts = index.below.astype(np.int64) @ leaves
    shown = np.flatnonzero(counts)
    rows = index.categories.rows
    return [
        {
            "id": rows[c]["id"],
            "name": rows[c]["name"],
            "parentId": rows[c]["parent_id"],
            "count": int(counts[c]),
        }
        for c in shown[np.lexsort((index.categories.by_name[shown], -counts[shown]))]
    ]


def _brands(index: CatalogIndex, kept: Mask) -> list[dict[str, Any]]:
    brands = index.brand[kept]
    counts = np.bincount(brands[brands >= 0], minlength=len(index.brands.rows))
    shown = np.flatnonzero(counts)
    rows = index.brands.rows
    return [
        {"id": rows[b]["id"], "name": rows[b]["name"], "count": int(counts[b])}
        for b in shown[np.lexsort((index.brands.by_name[shown], -counts[shown]))]
    ]


def _attributes(index: CatalogIndex, selection: Selection, kept: Mask) -> list[dict[str, Any]]:
    """Per (name, value): the products with a variant carrying it that meets the other names' filters."""
    attributes = index.attributes
    counts = np.zeros(len(attributes.pairs), np.int64)
    if not selection.attributes:
        counts = np.count_nonzero(attributes.has & kept, axis=1)
    else:
        variants_kept = kept[attributes.variant_slot]
        for name, pairs in attributes.names.items():
            others = [column for other, column in selection.attributes.items() if other != name]
            allowed = variants_kept & _all(others, len(variants_kept))
            for pair in pairs:
                members = attributes.pair_variants[pair]
                counts[pair] = len(np.unique(attributes.variant_slot[members[allowed[members]]]))
    names = attributes.name_rank
    shown = [pair for pair in range(len(attributes.pairs)) if counts[pair]]
    shown.sort(key=lambda pair: (names[attributes.pairs[pair][0]], -counts[pair], attributes.rank[pair]))
    return [
        {"name": attributes.pairs[pair][0], "value": attributes.pairs[pair][1], "count": int(counts[pair])}
        for pair in shown
    ]


async def suggestions(index: CatalogIndex, pool: asyncpg.Pool, text: str) -> bytes:
    """svc_product.suggest over the index: categories and brands, then products, 10 at most."""
    words = text.split()
    if not words:
        return encode(Suggestions(query=text, suggestions=[]))
    spelled = await spelling(index, pool, words)
    typed = spelled.best()
    found = _named(index.categories.rows, index.categories.by_length, "category", spelled, typed)
    found += _named(index.brands.rows, index.brands.by_length, "brand", spelled, typed)
    in_names = words_matching(index.name_words, index.size, spelled.words, spelled.alternatives)
    matching = _all(in_names, index.size) & index.alive
    starting = matching & index.named_starting(typed)
    popular = index.orders["popularity"]
    slots = [
        *popular[starting[popular]][:MAX_SUGGESTIONS],
        *popular[(matching & ~starting)[popular]][:MAX_SUGGESTIONS],
    ]
    for slot in slots[:MAX_SUGGESTIONS]:
        item = index.summary(int(slot))
        found.append(Suggestion(kind="product", id=item.id, name=item.name, slug=item.slug))
    return encode(Suggestions(query=text, suggestions=found[:MAX_SUGGESTIONS]))


def _named(
    rows: Sequence[asyncpg.Record], by_length: Ints, kind: str, spelling: Spelling, typed: str
) -> list[Suggestion]:
    """The categories or brands with a name word starting each word typed (or one of its corrections),
    those whose name starts with the text first, then the shortest names: 3 at most."""
    chosen = []
    for i, row in enumerate(rows):
        names = row["words"]
        if all(
            any(w.startswith(word) or w in options for w in names)
            for word, options in zip(spelling.words, spelling.alternatives, strict=True)
        ):
            chosen.append((not row["folded"].startswith(typed), int(by_length[i]), row))
    chosen.sort(key=lambda entry: entry[:2])
    return [
        Suggestion(kind=kind, id=row["id"], name=row["name"], slug=row["slug"])  # type: ignore[arg-type]
        for _, _, row in chosen[:MAX_PER_GROUP]
    ]
