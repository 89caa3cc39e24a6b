"""The product list's SQL: the conditions of a query, shared by its page and its facets, built from
constant fragments with every value a parameter.

Each combination of filters is its own statement, so asyncpg prepares it once and PostgreSQL plans it
with the filters it really has (no `$1 IS NULL OR ...` that a generic plan would get wrong).

A search matches words and word prefixes through the tsvector; a word the catalog does not know is
widened to its spelling corrections (svc_product.typos), whose matches rank below those of the words
as typed. Then the products with more of the words in their names rank first, then the most reviewed
(an order svc_product.search computes alike from its columns). A search that still finds nothing is
tried as a fragment anywhere in the name, through trigrams ("aptop" finds laptops), and so is a search
without any word.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from kit.http import like_pattern
from svc_product import typos
from svc_product.query import ListQuery
from svc_product.typos import Spelling

_SUMMARY = """
SELECT p.id, p.name, p.slug, p.price::float8 AS price, p.status, p.seller_id, p.category_id, p.brand_id,
       p.rating::float8 AS rating, p.review_count, p.created_at, p.updated_at,
       (SELECT url FROM product_images i WHERE i.product_id = p.id ORDER BY i.position LIMIT 1) AS image"""
# Written out, not a parameter: the planner then uses the indexes made for active products even in a
# generic plan of the prepared statement.
_STATUS = {status: f"p.status = '{status}'" for status in ("active", "draft", "inactive")}
_ORDER_COLUMNS = {"price": "p.price", "name": "p.name", "createdAt": "p.created_at", "rating": "p.rating"}
# A variant of the product whose attribute `{name}` is one of `{values}`.
VARIANT_HAS = "v.attributes ->> {name} = ANY({values}::text[])"


def tsquery(words: Sequence[str], alternatives: Sequence[Sequence[str]] = (), label: str = "") -> str:
    """Every word must match, also as the prefix of a longer word ("lapt" finds laptop), or one of its
    alternatives exactly (`smrtphone` -> `(smrtphone:* | smartphone)`); `label` limits them to the
    lexemes of that weight (A: a product's name)."""
    terms = []
    for position, word in enumerate(words):
        options = alternatives[position] if position < len(alternatives) else ()
        spelled = (f"{word}:*{label}", *(f"{option}:{label}" if label else option for option in options))
        terms.append(f"({' | '.join(spelled)})" if options else spelled[0])
    return " & ".join(terms)


@dataclass
class Conditions:
    """A list query as SQL: `scope` (status, seller, search) is what facets count within; `filters` are
    the conditions a facet leaves out for its own counts, by facet name."""

    args: list[object] = field(default_factory=list)
    scope: list[str] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    # Attribute name -> the condition on a variant `v` (the attributes facet leaves out its own name's).
    attributes: dict[str, str] = field(default_factory=dict)
    rank: str = ""
    # True for a product the search matches as typed (set when corrections widened it).
    literal: str = ""

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, leave_out: str | None = None) -> str:
        return " AND ".join([*self.scope, *(c for name, c in self.filters.items() if name != leave_out)])


def conditions(
    query: ListQuery,
    seller_id: uuid.UUID | None,
    spelling: Spelling | None,
    fragment: bool,
    ranked: bool = False,
) -> Conditions:
    """The conditions of `query`; `ranked` adds what a page orders by (the rank, the literal match)."""
    c = Conditions(scope=["p.deleted_at IS NULL"])
    if query.status != "all":
        c.scope.append(_STATUS[query.status])
    if seller_id is not None:
        c.scope.append(f"p.seller_id = {c.arg(seller_id)}")
    if query.search is not None and (fragment or not query.words):
        c.scope.append(f"p.folded_name LIKE catalog_fold({c.arg(like_pattern(query.search))})")
    elif query.search is not None:
        alternatives = spelling.alternatives if spelling is not None else ()
        ts = f"to_tsquery('simple', catalog_fold({c.arg(tsquery(query.words, alternatives))}))"
        c.scope.append(f"p.document @@ {ts}")
        if ranked and query.ordering[0] == "relevance":
            # How many of the words the name has (weight A).
            in_name = [tsquery([word], alternatives[i : i + 1], "A") for i, word in enumerate(query.words)]
            c.rank = " + ".join(
                f"(p.document @@ to_tsquery('simple', catalog_fold({c.arg(text)})))::int" for text in in_name
            )
        if ranked and spelling is not None and spelling.corrected:
            c.literal = f"p.document @@ to_tsquery('simple', catalog_fold({c.arg(tsquery(query.words))}))"
    if query.seller_id is not None:
        c.filters["seller"] = f"p.seller_id = {c.arg(query.seller_id)}"
    if query.category_id is not None:
        c.filters["category"] = f"p.category_id IN (SELECT category_subtree({c.arg(query.category_id)}))"
    if query.brand_id is not None:
        c.filters["brand"] = f"p.brand_id = {c.arg(query.brand_id)}"
    prices = []
    if query.min_price is not None:
        prices.append(f"p.price >= {c.arg(query.min_price)}::numeric")
    if query.max_price is not None:
        prices.append(f"p.price <= {c.arg(query.max_price)}::numeric")
    if prices:
        c.filters["price"] = " AND ".join(prices)
    if query.min_rating is not None:
        c.filters["rating"] = f"p.rating >= {c.arg(query.min_rating)}::numeric"
    if query.in_stock is not None:
        c.filters["stock"] = "p.in_stock" if query.in_stock else "NOT p.in_stock"
    for name, values in query.attributes:
        c.attributes[name] = VARIANT_HAS.format(name=c.arg(name), values=c.arg(list(values)))
    if c.attributes:
        every = " AND ".join(c.attributes.values())
        c.filters["attributes"] = (
            f"EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND {every})"
        )
    return c


def list_statement(
    query: ListQuery, seller_id: uuid.UUID | None, spelling: Spelling | None = None, fragment: bool = False
) -> tuple[str, str, list[object]]:
    """(page SQL, count SQL, arguments) for a product list."""
    c = conditions(query, seller_id, spelling, fragment, ranked=True)
    sort, descending = query.ordering
    direction = " DESC" if descending else ""
    if sort == "relevance" and c.rank:
        order = f"{c.literal} DESC, " if c.literal else ""
        order += "rank DESC, p.review_count DESC, p.id"
    else:
        column = _ORDER_COLUMNS.get(sort, "p.created_at")
        order = f"{column}{direction}, p.id{direction}"
    extra = f", {c.rank} AS rank" if c.rank else ""
    if c.literal:
        extra += f", count(*) FILTER (WHERE {c.literal}) OVER () AS literal_total"
    condition = c.where()
    count_sql = f"SELECT count(*) FROM products p WHERE {condition}"
    page_sql = (
        f"{_SUMMARY}{extra}, count(*) OVER () AS total FROM products p WHERE {condition}"
        f" ORDER BY {order} LIMIT {c.arg(query.page_size)} OFFSET {c.arg(query.offset)}"
    )
    return page_sql, count_sql, c.args


@dataclass
class Found:
    """A page of the list, how many match in all, and how its search was read (for the facets)."""

    rows: list[asyncpg.Record]
    total: int
    spelling: Spelling | None = None
    fragment: bool = False
    # The corrected search, when the search as typed matched nothing and the correction did.
    did_you_mean: str | None = None


async def product_page(conn: asyncpg.Connection, query: ListQuery, seller_id: uuid.UUID | None) -> Found:
    """One page of products and the number of all that match.

    A search first has its words' spelling checked against the catalog's vocabulary (one small
    statement); a search that finds nothing even so is tried again as a fragment.
    """
    spelling = await typos.spelling(conn, query.words) if query.words else None
    found = await _page(conn, query, seller_id, spelling)
    if found.total == 0 and query.search is not None and query.words and len(query.search) >= 3:
        found = await _page(conn, query, seller_id, None, fragment=True)
    return found


async def _page(
    conn: asyncpg.Connection,
    query: ListQuery,
    seller_id: uuid.UUID | None,
    spelling: Spelling | None,
    fragment: bool = False,
) -> Found:
    page_sql, count_sql, args = list_statement(query, seller_id, spelling, fragment)
    rows = await conn.fetch(page_sql, *args)
    found = Found(rows, 0, spelling, fragment)
    if rows:
        found.total = rows[0]["total"]
        if spelling is not None and spelling.corrected and rows[0]["literal_total"] == 0:
            found.did_you_mean = spelling.best()
    elif query.page > 1:
        # Past the last page no row carries the total: count separately (rare).
        found.total = await conn.fetchval(count_sql, *args[:-2])
    return found
