"""Rows into the JSON documents the API serves, encoded once and cached as bytes.

A product's cached document is its detail without `stock`; `stock_tail` is the ending that adds the
stock figure per response (kit.representation puts it in place of the closing brace, in the plain and
the gzipped answer alike), so the hot path never decodes, re-encodes or compresses the product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec

from kit.http import encode
from svc_product.query import FIELDS
from svc_product.schemas import (
    Attribute,
    Brand,
    BrandRef,
    Category,
    CategoryInfo,
    CategoryNode,
    CategoryRef,
    Image,
    ProductDetail,
    ProductSummary,
    Review,
    Variant,
)

S = TypeVar("S", bound=msgspec.Struct)
_fields: dict[type, tuple[str, ...]] = {}
_paths = msgspec.json.Decoder(list[CategoryRef])
_variants = msgspec.json.Decoder(list[Variant])
_attributes = msgspec.json.Decoder(list[Attribute])
_images = msgspec.json.Decoder(list[Image])


def detail(row: asyncpg.Record) -> ProductDetail:
    """A product row of `store.DETAIL` as its detail document."""
    path = _paths.decode(row["category_path"])
    leaf = path[-1]
    brand = (
        BrandRef(id=row["brand_id"], name=row["brand_name"], slug=row["brand_slug"])
        if row["brand_id"] is not None
        else None
    )
    return from_row(
        ProductDetail,
        row,
        category=CategoryInfo(id=leaf.id, name=leaf.name, slug=leaf.slug, path=path),
        brand=brand,
        variants=_variants.decode(row["variants"]),
        attributes=_attributes.decode(row["attributes"]),
        images=_images.decode(row["images"]),
    )


def encode_detail(row: asyncpg.Record) -> bytes:
    return encode(detail(row))


def stock_tail(stock: bytes) -> bytes:
    """The detail's ending with `"stock": ...` as its last member (`stock` is JSON: an object or null)."""
    return b"".join((b',"stock":', stock, b"}"))


def from_row(kind: type[S], row: asyncpg.Record, **given: Any) -> S:
    """`kind` with each field taken from the row's column of the same name, unless `given`."""
    names = _fields.get(kind)
    if names is None:
        names = _fields[kind] = tuple(f.name for f in msgspec.structs.fields(kind))
    return kind(**{name: given[name] if name in given else row[name] for name in names})


def summary(row: asyncpg.Record) -> ProductSummary:
    return from_row(ProductSummary, row)


def trimmed(items: Sequence[ProductSummary], fields: Iterable[str] | None) -> list[Any]:
    """The items, each cut down to `fields` (camelCase wire names) when the query asked for some."""
    if fields is None:
        return list(items)
    pairs = [(name, FIELDS[name]) for name in fields]
    return [{name: getattr(item, attr) for name, attr in pairs} for item in items]


def page(items: list[Any], page: int, page_size: int, total: int, **extra: Any) -> bytes:
    """The contract's list shape (CONTRACT.md section 2), encoded, with the `extra` members given."""
    pages = (total + page_size - 1) // page_size
    return encode(
        {"items": items, "page": page, "pageSize": page_size, "totalCount": total, "totalPages": pages}
        | extra
    )


def category_tree(rows: Iterable[asyncpg.Record]) -> list[CategoryNode]:
    """The flat category rows (ordered by position, name) as a forest of nested nodes."""
    nodes: dict[Any, CategoryNode] = {}
    parents: list[tuple[Any, CategoryNode]] = []
    for row in rows:
        node = CategoryNode(
            id=row["id"],
            name=row["name"],
            slug=row["slug"],
            description=row["description"],
            position=row["position"],
            children=[],
        )
        nodes[row["id"]] = node
        parents.append((row["parent_id"], node))
    roots = []
    for parent_id, node in parents:
        if parent_id is None:
            roots.append(node)
        else:
            nodes[parent_id].children.append(node)
    return roots


def category(row: asyncpg.Record) -> Category:
    return from_row(Category, row, path=_paths.decode(row["path"]), children=_paths.decode(row["children"]))


def brand(row: asyncpg.Record) -> Brand:
    return from_row(Brand, row)


def review(row: asyncpg.Record) -> Review:
    return from_row(Review, row)
