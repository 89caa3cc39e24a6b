"""`GET /api/products/suggest?q=`: what a search box offers while a shopper types.

At most 10 suggestions: categories and brands whose names have words starting with the words typed
(3 of each at most), then products whose names do, the most reviewed first; a name that starts with the
text typed comes before one that only has a word starting so. Words the catalog does not know are
widened to their spelling corrections, as a search is (svc_product.typos), so `smrtph` still offers the
smartphones. The answer is cached per normalised text in the list namespace (kit.cache), so a
catalog write that changes the lists changes the suggestions too; typing is mostly hits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

import asyncpg

from kit.errors import invalid
from kit.http import Model, encode
from svc_product import listing, typos
from svc_product.query import MAX_SEARCH, once, search_words

MAX_SUGGESTIONS = 10
MAX_PER_GROUP = 3

# $1: the tsquery text (words and prefixes, alternatives), $2: the text typed, spelling corrected.
SUGGESTIONS = f"""
WITH q AS (SELECT to_tsquery('simple', catalog_fold($1)) AS ts, catalog_fold($2) AS typed)
(SELECT 'category' AS kind, c.id, c.name, c.slug
 FROM categories c, q WHERE setweight(to_tsvector('simple', catalog_fold(c.name)), 'A') @@ q.ts
 ORDER BY starts_with(catalog_fold(c.name), q.typed) DESC, length(c.name), c.name LIMIT {MAX_PER_GROUP})
UNION ALL
(SELECT 'brand', b.id, b.name, b.slug
 FROM brands b, q WHERE setweight(to_tsvector('simple', catalog_fold(b.name)), 'A') @@ q.ts
 ORDER BY starts_with(catalog_fold(b.name), q.typed) DESC, length(b.name), b.name LIMIT {MAX_PER_GROUP})
UNION ALL
(SELECT 'product', p.id, p.name, p.slug
 FROM products p, q
 WHERE p.deleted_at IS NULL AND p.status = 'active' AND p.document @@ q.ts
 ORDER BY starts_with(p.folded_name, q.typed) DESC, p.review_count DESC, p.rating DESC, p.name, p.id
 LIMIT {MAX_SUGGESTIONS})
"""


class Suggestion(Model):
    kind: Literal["category", "brand", "product"]
    id: uuid.UUID
    name: str
    slug: str


class Suggestions(Model):
    """The text as it was understood (its words, lower case) and what to offer for it."""

    query: str
    suggestions: list[Suggestion]


def typed(params: Iterable[tuple[str, str]]) -> str:
    """The normalised text of `?q=` (its words, lower case, single spaces): also the cache key."""
    text = " ".join(once(params, ("q",)).get("q", "").split())
    if not text:
        raise invalid("q", "q is required: the text typed so far")
    if len(text) > MAX_SEARCH:
        raise invalid("q", f"q must be at most {MAX_SEARCH} characters")
    return " ".join(search_words(text))


async def suggestions(conn: asyncpg.Connection, text: str) -> bytes:
    words = text.split()
    if not words:
        return encode(Suggestions(query=text, suggestions=[]))
    spelling = await typos.spelling(conn, words)
    # Product names only (weight A of the document), not their descriptions.
    ts = listing.tsquery(words, spelling.alternatives, label="A")
    rows = await conn.fetch(SUGGESTIONS, ts, spelling.best())
    return encode(Suggestions(query=text, suggestions=_pick(rows)))


def _pick(rows: list[asyncpg.Record]) -> list[Suggestion]:
    """Categories, brands, then products (the statement's order), 10 in all."""
    return [
        Suggestion(kind=row["kind"], id=row["id"], name=row["name"], slug=row["slug"])
        for row in rows[:MAX_SUGGESTIONS]
    ]
