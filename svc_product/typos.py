"""Typo tolerance: the words of a search that the catalog does not know, corrected from its vocabulary.

The vocabulary is `search_words` (migration 002): every word of an active product's name, kept by
triggers. A search word that is a word of it, or the prefix of one, is taken as typed. Any other is
replaced by the alternatives at the smallest edit distance (Levenshtein) within its allowance: none up
to 3 letters (too many short words are a letter apart), 1 up to 5, 2 from 6 on. The nearest
candidates by trigram distance are read from a GiST index first, so a lookup costs the same however
large the vocabulary is; only plain words (letters and digits) are offered. All the words of a search
are looked up in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

# Candidates read per word before their edit distance is measured.
_CANDIDATES = 24
# Alternatives kept per word (the nearest, then the commonest).
_ALTERNATIVES = 3

CORRECTIONS = f"""
SELECT q.word, k.known,
       CASE WHEN k.known THEN '{{}}'::text[] ELSE ARRAY(
           SELECT c.word FROM (
               SELECT w.word, w.products, levenshtein(w.word, q.word) AS edits
               FROM search_words w WHERE w.products > 0 AND w.word ~ '^[[:alnum:]]+$'
               ORDER BY w.word <-> q.word LIMIT {_CANDIDATES}) c
           WHERE c.edits <= CASE WHEN length(q.word) <= 3 THEN 0 WHEN length(q.word) <= 5 THEN 1 ELSE 2 END
           ORDER BY c.edits, c.products DESC, c.word LIMIT {_ALTERNATIVES})
       END AS alternatives
FROM (SELECT catalog_fold(u.raw) AS word, u.position
      FROM unnest($1::text[]) WITH ORDINALITY AS u(raw, position)) q
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM search_words w
                   WHERE w.word >= q.word AND w.word < q.word || chr(1114111) AND w.products > 0) AS known
) k
ORDER BY q.position
"""


class Spelling(msgspec.Struct, frozen=True):
    """Each word of a search (folded) with what it may stand for: () when it is known as typed."""

    words: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]

    @property
    def corrected(self) -> bool:
        return any(self.alternatives)

    def best(self) -> str:
        """The search as the catalog would spell it (each unknown word replaced by its nearest)."""
        pairs = zip(self.words, self.alternatives, strict=True)
        return " ".join(options[0] if options else word for word, options in pairs)


async def spelling(conn: asyncpg.Connection, words: Sequence[str]) -> Spelling:
    rows = await conn.fetch(CORRECTIONS, list(words))
    return Spelling(
        words=tuple(row["word"] for row in rows),
        alternatives=tuple(tuple(row["alternatives"]) for row in rows),
    )
