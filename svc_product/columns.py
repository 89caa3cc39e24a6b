"""The public catalog held in the process, column by column, for search, facets and suggestions.

A search with facets in SQL reads and groups every match (10-40 ms of PostgreSQL for a broad word over
the demo catalog), so 500 a second cannot come from two cores. The active products fit in memory: each
process keeps them as numpy columns (price, rating, category, brand, stock, ...), the words of their
documents as postings (each word's products, words in byte order so a prefix is a slice), their
variants' attributes, and the sort orders PostgreSQL gives them (its collation for names, ids as its
uuid order). svc_product.search answers from it; svc_product.index reads it and keeps it current.

Written for cheap updates: a product is a slot, and slots are only ever added. A written product's old
slot dies (`alive`) and it gets a new one at the end with its new values; the words of the slots added
since the catalog was last read whole are postings of their own (`Terms.recent`), so an update costs a
few numpy copies and sorts of 10,000 numbers, not a read of the catalog. Each update makes a new
`CatalogIndex` (sharing what did not change): a request keeps the one it started with.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import numpy.typing as npt

from svc_product import documents
from svc_product.postings import NO_ATTRIBUTES, NO_POSTINGS, Attributes, Ints, Mask, Postings, Terms
from svc_product.schemas import ProductSummary

Floats = npt.NDArray[np.float64]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Answers kept per index (spellings, folds, packed suggestions): a new index starts without them.
_MAX_REMEMBERED = 20_000


@dataclass(frozen=True)
class Added:
    """What a slot added since the last whole read brings to the postings (kept to rebuild `recent`)."""

    slot: int
    folded_name: str
    words: tuple[str, ...]
    name_words: tuple[str, ...]


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

    def moved(self, earlier: Named) -> Ints:
        """Per position in `earlier` (and -1 last, for none), the same row's position here (-1: gone)."""
        return np.array([*(self.position.get(row["id"], -1) for row in earlier.rows), -1], np.int64)


@dataclass(frozen=True)
class Seen:
    """Where an index was read: PostgreSQL's snapshot (`pg_snapshot` as text) and its clock then."""

    snapshot: str
    at: datetime


def _kind(key: object) -> object:
    """What a remembered answer is (keys are (kind, text))."""
    return key[0] if isinstance(key, tuple) else None


def _below(categories: Named) -> Mask:
    """below[c, d]: category d is c or under it."""
    count = len(categories.rows)
    below = np.eye(count, dtype=np.bool_)
    parent = [categories.position.get(row["parent_id"], -1) for row in categories.rows]
    for start in range(count):
        up = parent[start]
        while up >= 0:
            below[up, start] = True
            up = parent[up]
    return below


class CatalogIndex:
    """The active products as columns over slots (dead ones masked out by `alive`), read at `seen`."""

    def __init__(self, seen: Seen, categories: Named, brands: Named) -> None:
        self.generation = 0
        self.seen = seen
        self.size = 0
        self.alive: Mask = np.zeros(0, np.bool_)
        self.slot_of: dict[uuid.UUID, int] = {}
        self.summaries: list[ProductSummary] = []
        self.folded_names: list[str] = []
        self.price: Floats = np.zeros(0)
        self.rating: Floats = np.zeros(0)
        self.in_stock: Mask = np.zeros(0, np.bool_)
        self.review_count: Ints = np.zeros(0, np.int64)
        self.created: Ints = np.zeros(0, np.int64)
        self.id_high: Ints = np.zeros(0, np.int64)
        self.id_low: Ints = np.zeros(0, np.int64)
        self.category: Ints = np.zeros(0, np.int64)
        self.brand: Ints = np.zeros(0, np.int64)
        self.seller: Ints = np.zeros(0, np.int64)
        self.sellers: dict[uuid.UUID, int] = {}
        self.orders: dict[str, Ints] = {}
        self.id_rank: Ints = np.zeros(0, np.int64)
        self.words = self.name_words = self.names = Terms(NO_POSTINGS)
        self.added: list[Added] = []
        self.whole_size = 0  # slots when the catalog was read whole (those after it came by updates)
        self.attributes = NO_ATTRIBUTES
        self.categories = categories
        self.brands = brands
        self.below = _below(categories)
        self.names_text = ""
        self.line_starts: Ints = np.zeros(0, np.int64)
        self.remembered: dict[object, object] = {}

    @classmethod
    def whole(
        cls,
        seen: Seen,
        products: Sequence[asyncpg.Record],
        words: Postings,
        name_words: Postings,
        attributes: Attributes,
        categories: Named,
        brands: Named,
    ) -> CatalogIndex:
        """From a read of every active product (slot = its row's position, `by_name` its name order)."""
        index = cls(seen, categories, brands)
        index._append(products)
        index.words, index.name_words = Terms(words), Terms(name_words)
        index.names = Terms(Postings.grouped((name, slot) for slot, name in enumerate(index.folded_names)))
        index.attributes = attributes
        index.whole_size = index.size
        by_name = np.argsort(np.array([row["by_name"] for row in products], np.int64))
        index._sort(by_name)
        return index

    def updated(
        self,
        seen: Seen,
        changed: Iterable[uuid.UUID],
        products: Sequence[asyncpg.Record],
        variants: Sequence[asyncpg.Record],
        ranks: Mapping[tuple[str, str], int] | None,
        categories: Named | None = None,
        brands: Named | None = None,
    ) -> CatalogIndex:
        """This index after the products `changed` (read again at `seen`: `products` are those still
        active, in name order, each with `after`, the unchanged product before it in that order, its
        `words` and `name_words`; `variants` their attribute rows), and the categories or brands if they
        changed. Raises KeyError when `after` is not in the index (it would have to be read whole)."""
        new = copy.copy(self)
        new.seen = seen
        new.slot_of = dict(self.slot_of)
        gone = [slot for product in changed if (slot := new.slot_of.pop(product, None)) is not None]
        # Spellings hold while the active products' names do (the vocabulary is theirs); folds always do;
        # suggestions are made again (popularity, names, categories and brands may have moved).
        names_kept = len(gone) == len(products) and all(
            self.slot_of.get(row["id"]) is not None
            and self.folded_names[self.slot_of[row["id"]]] == row["folded_name"]
            for row in products
        )
        kept_kinds = ("fold", "spelling") if names_kept else ("fold",)
        new.remembered = {key: value for key, value in self.remembered.items() if _kind(key) in kept_kinds}
        if categories is not None:
            new.categories, new.below = categories, _below(categories)
            new.category = categories.moved(self.categories)[self.category]
        if brands is not None:
            new.brands = brands
            new.brand = brands.moved(self.brands)[self.brand]
        first = new._append(products)
        new.alive[gone] = False
        # The name order: the unchanged products as they were, each changed one right after its `after`.
        kept = self.orders["name"]
        kept = kept[new.alive[kept]]
        place = np.zeros(new.size, np.int64)
        place[kept] = np.arange(1, len(kept) + 1)
        at = [0 if row["after"] is None else int(place[new.slot_of[row["after"]]]) for row in products]
        fresh = np.arange(first, new.size, dtype=np.int64)
        new._sort(np.insert(kept, np.array(at, np.int64), fresh))
        # Postings of every slot added since the last whole read (a few hundred at most: index.py).
        new.added = [
            *(a for a in self.added if new.alive[a.slot]),
            *(
                Added(slot, row["folded_name"], tuple(row["words"]), tuple(row["name_words"]))
                for slot, row in zip(fresh.tolist(), products, strict=True)
            ),
        ]
        new.words = Terms(self.words.base, Postings.grouped((w, a.slot) for a in new.added for w in a.words))
        new.name_words = Terms(
            self.name_words.base, Postings.grouped((w, a.slot) for a in new.added for w in a.name_words)
        )
        new.names = Terms(self.names.base, Postings.grouped((a.folded_name, a.slot) for a in new.added))
        slot_of = new.slot_of
        new.attributes = self.attributes.added(
            [(slot_of[row["product_id"]], row["variant"], row["name"], row["value"]) for row in variants],
            new.size,
            ranks,
        )
        return new

    def _append(self, products: Sequence[asyncpg.Record]) -> int:
        """Slots at the end for `products` (alive); returns the first one."""
        first = self.size
        self.size = first + len(products)
        self.alive = np.concatenate((self.alive, np.ones(len(products), np.bool_)))
        for slot, row in enumerate(products, first):
            self.slot_of[row["id"]] = slot
        self.summaries = [*self.summaries, *(documents.summary(row) for row in products)]
        self.folded_names = [*self.folded_names, *(row["folded_name"] for row in products)]
        sellers = self.sellers
        if any(row["seller_id"] not in sellers for row in products):
            self.sellers = sellers = dict(sellers)
        brand_of, category_of = self.brands.position.get, self.categories.position.__getitem__
        columns = {
            "price": np.array([row["price"] for row in products], np.float64),
            "rating": np.array([row["rating"] for row in products], np.float64),
            "in_stock": np.array([row["in_stock"] for row in products], np.bool_),
            "review_count": np.array([row["review_count"] for row in products], np.int64),
            "created": np.array([(row["created_at"] - _EPOCH) // _MICROSECOND for row in products], np.int64),
            # An id's 128 bits as two signed halves ordered as PostgreSQL orders uuids (bytes).
            "id_high": np.array([(row["id"].int >> 64) - 2**63 for row in products], np.int64),
            "id_low": np.array([(row["id"].int & (2**64 - 1)) - 2**63 for row in products], np.int64),
            "category": np.array([category_of(row["category_id"]) for row in products], np.int64),
            "brand": np.array([brand_of(row["brand_id"], -1) for row in products], np.int64),
            "seller": np.array(
                [sellers.setdefault(row["seller_id"], len(sellers)) for row in products], np.int64
            ),
        }
        for name, column in columns.items():
            setattr(self, name, np.concatenate((getattr(self, name), column)))
        # Every folded name on a line of its own: a fragment is found by one scan of one string.
        names = [row["folded_name"] for row in products]
        lengths = np.fromiter((len(name) + 1 for name in names), np.int64, len(names))
        end = len(self.names_text) + 1 if first else 0
        self.line_starts = np.concatenate((self.line_starts, end + np.cumsum(lengths) - lengths))
        self.names_text = "\n".join([self.names_text, *names] if first else names)
        return first

    def _sort(self, by_name: Ints) -> None:
        """Every sort order of the live slots, ascending (a descending one is the same read backwards),
        ties by id as PostgreSQL breaks them (`ORDER BY price, id` ...); `by_name` is given."""
        live = np.flatnonzero(self.alive)
        by_id = live[np.lexsort((self.id_low[live], self.id_high[live]))]
        self.id_rank = np.zeros(self.size, np.int64)
        self.id_rank[by_id] = np.arange(len(by_id))
        name_rank = np.zeros(self.size, np.int64)
        name_rank[by_name] = np.arange(len(by_name))

        def by(key: npt.NDArray[np.generic]) -> Ints:
            """The live slots ordered by `key`, then by id (a stable sort of them in id order)."""
            return by_id[np.argsort(key[by_id], kind="stable")]

        self.orders = {
            "price": by(self.price),
            "name": by_name,
            "createdAt": by(self.created),
            "rating": by(self.rating),
            # review_count DESC, rating DESC, name, id (name_rank breaks every tie: names ties by id)
            "popularity": live[np.lexsort((name_rank[live], -self.rating[live], -self.review_count[live]))],
        }

    def moved_on(self, seen: Seen) -> CatalogIndex:
        """This index as of a later snapshot in which nothing it holds changed."""
        new = copy.copy(self)
        new.seen = seen
        return new

    def none(self) -> Mask:
        return np.zeros(self.size, np.bool_)

    def named_starting(self, text: str) -> Mask:
        """The products whose folded name starts with `text` (dead ones too: callers mask them out)."""
        return self.names.prefixed(text, self.none())

    def containing(self, fragment: str) -> Mask:
        """The live products whose folded name contains `fragment` (words of a search: no line break)."""
        if not fragment:
            return self.alive.copy()
        found = self.none()
        starts = [match.start() for match in re.finditer(re.escape(fragment), self.names_text)]
        found[np.searchsorted(self.line_starts, starts, side="right") - 1] = True
        return found & self.alive

    def summary(self, slot: int) -> ProductSummary:
        return self.summaries[slot]

    def remember(self, key: object, value: object) -> None:
        if len(self.remembered) >= _MAX_REMEMBERED:
            self.remembered.clear()
        self.remembered[key] = value
