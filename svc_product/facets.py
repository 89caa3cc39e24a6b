"""Facet counts of a product list (`?facets=category,brand,price,rating,attributes,stock`), in one statement.

The products the list's search, status and seller select are read once (`base`), with one flag per
filter the query has. Each facet then counts the rows that pass every filter but its own, as shoppers
expect: with `brandId=X`, the brand facet still shows how many the other brands would give. The
category counts are tree-aware: a category counts the products of all its sub-categories. Attributes
are those of variants: a (name, value) counts the products with a variant carrying it that meets the
other attributes' filters (colour:Red with size:M counts products with a red variant in M).
"""

from __future__ import annotations

import uuid

import asyncpg

from svc_product import listing
from svc_product.listing import Found
from svc_product.query import ListQuery

# Price bands in VND: [0, 100,000), [100,000, 500,000), ... and 10,000,000 upwards.
PRICE_BANDS = (0, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000)
# Rating bands: "4 and up", "3 and up", ...
RATING_BANDS = (4, 3, 2, 1)


def _price_bands(where: str) -> str:
    bands = []
    for low, high in zip(PRICE_BANDS, (*PRICE_BANDS[1:], None), strict=True):
        within = f"b.price >= {low}" + (f" AND b.price < {high}" if high is not None else "")
        bound = str(high) if high is not None else "null"
        bands.append(
            f"jsonb_build_object('min', {low}, 'max', {bound}, 'count', count(*) FILTER (WHERE {within}))"
        )
    return f"(SELECT jsonb_build_array({', '.join(bands)}) FROM base b WHERE {where})"


def _rating_bands(where: str) -> str:
    bands = [
        f"jsonb_build_object('min', {low}, 'count', count(*) FILTER (WHERE b.rating >= {low}))"
        for low in RATING_BANDS
    ]
    return f"(SELECT jsonb_build_array({', '.join(bands)}) FROM base b WHERE {where})"


def _stock(where: str) -> str:
    bands = [
        f"jsonb_build_object('inStock', {flag}, 'count', count(*) FILTER (WHERE {test}))"
        for flag, test in (("true", "b.in_stock"), ("false", "NOT b.in_stock"))
    ]
    return f"(SELECT jsonb_build_array({', '.join(bands)}) FROM base b WHERE {where})"


def _brands(where: str) -> str:
    return f"""(SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name, 'count', t.n)
                                   ORDER BY t.n DESC, r.name), '[]')
        FROM (SELECT b.brand_id, count(*) AS n FROM base b WHERE {where} GROUP BY b.brand_id) t
        JOIN brands r ON r.id = t.brand_id)"""


# Counts per leaf walked up the tree (`up`, a CTE of the statement), summed per category.
_CATEGORIES = """(SELECT coalesce(jsonb_agg(jsonb_build_object('id', k.id, 'name', k.name,
                                   'parentId', k.parent_id, 'count', t.n) ORDER BY t.n DESC, k.name), '[]')
        FROM (SELECT id, sum(n) AS n FROM up GROUP BY id) t JOIN categories k ON k.id = t.id)"""


def _category_tree(where: str) -> str:
    return f"""leaf AS (SELECT b.category_id AS id, count(*) AS n FROM base b WHERE {where} GROUP BY 1),
up (id, n) AS (
    SELECT id, n FROM leaf
    UNION ALL
    SELECT k.parent_id, up.n FROM up JOIN categories k ON k.id = up.id WHERE k.parent_id IS NOT NULL
)"""


def _attributes(where: str, own: list[str]) -> str:
    own_filters = "".join(f" AND {condition}" for condition in own)
    return f"""(SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.name, 'value', a.value, 'count', a.n)
                                   ORDER BY a.name, a.n DESC, a.value), '[]')
        FROM (SELECT kv.key AS name, kv.value, count(DISTINCT b.id) AS n
              FROM base b JOIN product_variants v ON v.product_id = b.id
                   CROSS JOIN LATERAL jsonb_each_text(v.attributes) AS kv
              WHERE {where}{own_filters}
              GROUP BY kv.key, kv.value) a)"""


def statement(
    query: ListQuery, seller_id: uuid.UUID | None, found: Found | None = None
) -> tuple[str, list[object]]:
    """(SQL, arguments) of the facets `query` asks for, over the set its page was read from (`found`
    says whether the search was corrected or read as a fragment); the SQL answers one JSON object."""
    spelling, fragment = (found.spelling, found.fragment) if found is not None else (None, False)
    c = listing.conditions(query, seller_id, spelling, fragment)
    flags = {name: f"b.f_{name}" for name in c.filters}

    def others(facet: str) -> str:
        return " AND ".join(flag for name, flag in flags.items() if name != facet) or "TRUE"

    columns = "".join(f", {condition} AS f_{name}" for name, condition in c.filters.items())
    ctes = [
        "base AS MATERIALIZED (SELECT p.id, p.category_id, p.brand_id, p.price, p.rating, p.in_stock"
        f"{columns} FROM products p WHERE {' AND '.join(c.scope)})"
    ]
    fields = []
    for facet in query.facets:
        if facet == "category":
            ctes.append(_category_tree(others("category")))
            fields.append(f"'category', {_CATEGORIES}")
        elif facet == "brand":
            fields.append(f"'brand', {_brands(others('brand'))}")
        elif facet == "price":
            fields.append(f"'price', {_price_bands(others('price'))}")
        elif facet == "rating":
            fields.append(f"'rating', {_rating_bands(others('rating'))}")
        elif facet == "stock":
            fields.append(f"'stock', {_stock(others('stock'))}")
        elif facet == "attributes":
            # Each attribute filter holds on the variant, except for the facet values of its own name.
            own = [f"(kv.key = {c.arg(name)} OR {condition})" for name, condition in c.attributes.items()]
            fields.append(f"'attributes', {_attributes(others('attributes'), own)}")
    sql = f"WITH RECURSIVE {', '.join(ctes)} SELECT jsonb_build_object({', '.join(fields)})::text"
    return sql, c.args


async def counts(
    conn: asyncpg.Connection, query: ListQuery, seller_id: uuid.UUID | None, found: Found
) -> str:
    """The facets as a JSON object (text), for the list's answer."""
    sql, args = statement(query, seller_id, found)
    text: str = await conn.fetchval(sql, *args)
    return text
