"""Inverted lists of the catalog index (svc_product.columns): per word its products, per variant attribute
its variants, in the orders the index looks them up by."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Postings:
    """Words in byte order and, per word, its products' slots (`slots[offsets[i]:offsets[i + 1]]`)."""

    words: list[str]
    offsets: Ints
    slots: Ints

    @classmethod
    def of(cls, rows: Sequence[Any]) -> Postings:
        """From rows of `word` and `slots`, in the words' byte order (COLLATE "C", Python's str order)."""
        lengths = [len(row["slots"]) for row in rows]
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((s for row in rows for s in row["slots"]), np.int64, int(offsets[-1]))
        return cls([str(row["word"]) for row in rows], offsets, flat)

    @classmethod
    def grouped(cls, pairs: Iterable[tuple[str, int]]) -> Postings:
        """From (word, slot) pairs in slot order."""
        groups: dict[str, list[int]] = {}
        for word, slot in pairs:
            groups.setdefault(word, []).append(slot)
        return cls.of([{"word": word, "slots": groups[word]} for word in sorted(groups)])

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


NO_POSTINGS = Postings.of([])


@dataclass(frozen=True)
class Terms:
    """The postings of the catalog as last read whole and those of the slots added since."""

    base: Postings
    recent: Postings = NO_POSTINGS

    def prefixed(self, prefix: str, into: Mask) -> Mask:
        return self.recent.prefixed(prefix, self.base.prefixed(prefix, into))

    def exact(self, word: str, into: Mask) -> Mask:
        return self.recent.exact(word, self.base.exact(word, into))


@dataclass(frozen=True)
class Attributes:
    """Variant attributes: `pairs` (name, value) as first seen, `rank` their place in PostgreSQL's order
    (key, value); per pair its variants; per variant its product's slot; `has` (pair x product) for the
    common case without attribute filters."""

    pairs: list[tuple[str, str]]
    rank: Ints
    names: dict[str, list[int]]
    pair_variants: list[Ints]
    variant_slot: Ints
    has: Mask

    @property
    def name_rank(self) -> dict[str, int]:
        """Each attribute name's place in PostgreSQL's order."""
        first = {name: min(int(self.rank[p]) for p in pairs) for name, pairs in self.names.items()}
        return {name: place for place, name in enumerate(sorted(first, key=first.__getitem__))}

    @property
    def position(self) -> dict[tuple[str, str], int]:
        return {pair: i for i, pair in enumerate(self.pairs)}

    def added(
        self,
        variants: Sequence[tuple[int, uuid.UUID, str, str]],
        size: int,
        ranks: Mapping[tuple[str, str], int] | None,
    ) -> Attributes:
        """With the (slot, variant, name, value) rows of new variants, over `size` slots; `ranks` is every
        pair's place in PostgreSQL's order when new pairs came (None: none did)."""
        pairs, position = list(self.pairs), self.position
        numbers: dict[uuid.UUID, int] = {}
        slots: list[int] = []
        members: dict[int, list[int]] = {}
        for slot, variant, name, value in variants:
            pair = position.setdefault((name, value), len(pairs))
            if pair == len(pairs):
                pairs.append((name, value))
            number = numbers.setdefault(variant, len(self.variant_slot) + len(numbers))
            if number == len(self.variant_slot) + len(slots):
                slots.append(slot)
            members.setdefault(pair, []).append(number)
        variant_slot = np.concatenate((self.variant_slot, np.array(slots, np.int64)))
        pair_variants = [*self.pair_variants, *(np.zeros(0, np.int64) for _ in pairs[len(self.pairs) :])]
        has = np.zeros((len(pairs), size), np.bool_)
        has[: len(self.pairs), : self.has.shape[1]] = self.has
        for pair, chosen in members.items():
            pair_variants[pair] = np.concatenate((pair_variants[pair], np.array(chosen, np.int64)))
            has[pair, variant_slot[chosen]] = True
        rank = self.rank if ranks is None else np.array([ranks[pair] for pair in pairs], np.int64)
        names: dict[str, list[int]] = {}
        for pair, (name, _) in enumerate(pairs):
            names.setdefault(name, []).append(pair)
        return Attributes(pairs, rank, names, pair_variants, variant_slot, has)

    def satisfying(self, name: str, values: Sequence[str]) -> Mask:
        """The variants whose attribute `name` is one of `values`."""
        chosen = np.zeros(len(self.variant_slot), np.bool_)
        for pair in self.names.get(name, ()):
            if self.pairs[pair][1] in values:
                chosen[self.pair_variants[pair]] = True
        return chosen


NO_ATTRIBUTES = Attributes(
    [], np.zeros(0, np.int64), {}, [], np.zeros(0, np.int64), np.zeros((0, 0), np.bool_)
)
