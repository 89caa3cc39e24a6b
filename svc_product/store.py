"""svc_product's SQL: constants and small async functions that take a connection (the product list's
statements are built in svc_product.listing).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import msgspec

from kit.errors import Conflict, FieldError, invalid
from svc_product.schemas import AttributeInput, ImageInput, VariantInput

# -- product reads ------------------------------------------------------------------------------------

# The whole detail in one round trip; `= ANY($1)` serves one product and the batch read alike.
_DETAIL = """
SELECT p.id, p.name, p.slug, p.description, p.price::float8 AS price, p.status, p.seller_id,
       p.category_id, category_path(p.category_id)::text AS category_path,
       b.id AS brand_id, b.name AS brand_name, b.slug AS brand_slug,
       p.rating::float8 AS rating, p.review_count, p.created_at, p.updated_at, p.version,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', v.id, 'sku', v.sku, 'name', v.name,
                'price', v.price, 'attributes', v.attributes) ORDER BY v.position), '[]')
        FROM product_variants v WHERE v.product_id = p.id)::text AS variants,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.name, 'value', a.value) ORDER BY a.position),
                '[]')
        FROM product_attributes a WHERE a.product_id = p.id)::text AS attributes,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('url', i.url, 'altText', i.alt_text)
                                  ORDER BY i.position), '[]')
        FROM product_images i WHERE i.product_id = p.id)::text AS images
FROM products p LEFT JOIN brands b ON b.id = p.brand_id
WHERE p.deleted_at IS NULL
"""
ACTIVE_DETAILS = _DETAIL + "AND p.status = 'active' AND p.id = ANY($1::uuid[])"
DETAIL = _DETAIL + "AND p.id = $1"

CURRENT = """
SELECT seller_id, name, slug, description, price::float8 AS price, status, category_id, brand_id
FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE
"""
REVIEWABLE = "SELECT seller_id FROM products WHERE id = $1 AND deleted_at IS NULL AND status = 'active'"

# -- product writes -----------------------------------------------------------------------------------

INSERT_PRODUCT = """
INSERT INTO products (id, seller_id, name, slug, description, price, status, category_id, brand_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING version
"""
UPDATE_PRODUCT = """
UPDATE products SET seller_id = $2, name = $3, slug = $4, description = $5, price = $6, status = $7,
       category_id = $8, brand_id = $9, updated_at = now(), version = version + 1
WHERE id = $1
RETURNING version
"""
DELETE_PRODUCT = """
UPDATE products SET deleted_at = now(), updated_at = now(), version = version + 1 WHERE id = $1
RETURNING version
"""
# What a product's event carries beside its own columns: its first image and its variants.
PUBLISHED = """
SELECT (SELECT url FROM product_images WHERE product_id = $1 ORDER BY position LIMIT 1) AS image,
       (SELECT coalesce(json_agg(json_build_object('id', v.id, 'sku', v.sku, 'name', v.name,
                'price', v.price::float8) ORDER BY v.position), '[]')
        FROM product_variants v WHERE v.product_id = $1)::text AS variants
"""
_CLEAR_VARIANTS = "DELETE FROM product_variants WHERE product_id = $1"
_INSERT_VARIANTS = """
INSERT INTO product_variants (id, product_id, position, sku, name, price, attributes)
SELECT u.id, $1, u.position, u.sku, u.name, u.price, u.attributes::jsonb
FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[], $6::numeric[], $7::text[])
     AS u(id, position, sku, name, price, attributes)
"""
_CLEAR_ATTRIBUTES = "DELETE FROM product_attributes WHERE product_id = $1"
_INSERT_ATTRIBUTES = """
INSERT INTO product_attributes (product_id, position, name, value)
SELECT $1, u.position, u.name, u.value
FROM unnest($2::int[], $3::text[], $4::text[]) AS u(position, name, value)
"""
_CLEAR_IMAGES = "DELETE FROM product_images WHERE product_id = $1"
_INSERT_IMAGES = """
INSERT INTO product_images (product_id, position, url, alt_text)
SELECT $1, u.position, u.url, u.alt_text
FROM unnest($2::int[], $3::text[], $4::text[]) AS u(position, url, alt_text)
"""


class ProductFields(msgspec.Struct, kw_only=True):
    """A product's own columns as a write sets them (never the rating or the timestamps)."""

    seller_id: uuid.UUID
    name: str
    slug: str
    description: str
    price: float
    status: str
    category_id: uuid.UUID
    brand_id: uuid.UUID | None

    def columns(self) -> tuple[object, ...]:
        return (
            self.seller_id,
            self.name,
            self.slug,
            self.description,
            self.price,
            self.status,
            self.category_id,
            self.brand_id,
        )


def variant_id(product_id: uuid.UUID, sku: str) -> uuid.UUID:
    """Stable across edits: the same SKU of the same product keeps its id (carts refer to it)."""
    return uuid.uuid5(product_id, sku)


_json = msgspec.json.Encoder()


async def _replace(
    conn: asyncpg.Connection, clear: str, insert: str, product_id: uuid.UUID, *columns: list[Any]
) -> None:
    """Replace a product's rows of one child table with `columns` (one list per column of `insert`)."""
    await conn.execute(clear, product_id)
    if columns[0]:
        await conn.execute(insert, product_id, *columns)


async def replace_variants(
    conn: asyncpg.Connection, product_id: uuid.UUID, variants: list[VariantInput]
) -> None:
    await _replace(
        conn,
        _CLEAR_VARIANTS,
        _INSERT_VARIANTS,
        product_id,
        [variant_id(product_id, v.sku) for v in variants],
        list(range(len(variants))),
        [v.sku for v in variants],
        [v.name for v in variants],
        [v.price for v in variants],
        [_json.encode(v.attributes).decode() for v in variants],
    )


async def replace_attributes(
    conn: asyncpg.Connection, product_id: uuid.UUID, attributes: list[AttributeInput]
) -> None:
    positions = list(range(len(attributes)))
    names, values = [a.name for a in attributes], [a.value for a in attributes]
    await _replace(conn, _CLEAR_ATTRIBUTES, _INSERT_ATTRIBUTES, product_id, positions, names, values)


async def replace_images(conn: asyncpg.Connection, product_id: uuid.UUID, images: list[ImageInput]) -> None:
    positions = list(range(len(images)))
    urls, texts = [i.url for i in images], [i.alt_text for i in images]
    await _replace(conn, _CLEAR_IMAGES, _INSERT_IMAGES, product_id, positions, urls, texts)


# -- reviews ------------------------------------------------------------------------------------------

INSERT_REVIEW = """
INSERT INTO reviews (id, product_id, user_id, rating, comment) VALUES ($1, $2, $3, $4, $5)
RETURNING created_at
"""
# The average moves in the review's own transaction; the row lock of the UPDATE orders concurrent reviews.
RATE_PRODUCT = """
UPDATE products SET rating_total = rating_total + $2, review_count = review_count + 1,
       rating = round((rating_total + $2)::numeric / (review_count + 1), 2)
WHERE id = $1
"""
AUTHOR_NAME = "SELECT coalesce((SELECT name FROM authors WHERE user_id = $1), $2)"
_REVIEWS = """
SELECT r.id, r.product_id, r.user_id, coalesce(a.name, $4) AS author_name, r.rating, r.comment, r.created_at,
       count(*) OVER () AS total
FROM reviews r LEFT JOIN authors a ON a.user_id = r.user_id
WHERE r.product_id = $1
"""
REVIEWS = {
    ("createdAt", True): _REVIEWS + "ORDER BY r.created_at DESC, r.id DESC LIMIT $2 OFFSET $3",
    ("createdAt", False): _REVIEWS + "ORDER BY r.created_at, r.id LIMIT $2 OFFSET $3",
    ("rating", True): _REVIEWS + "ORDER BY r.rating DESC, r.created_at DESC, r.id LIMIT $2 OFFSET $3",
    ("rating", False): _REVIEWS + "ORDER BY r.rating, r.created_at DESC, r.id LIMIT $2 OFFSET $3",
}
COUNT_REVIEWS = "SELECT review_count FROM products WHERE id = $1"
VISIBLE = "SELECT EXISTS (SELECT 1 FROM products WHERE id = $1 AND deleted_at IS NULL AND status = 'active')"

# -- review authors (from user events) ----------------------------------------------------------------

UPSERT_AUTHOR = """
INSERT INTO authors (user_id, name, changed_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, changed_at = excluded.changed_at
WHERE authors.changed_at < excluded.changed_at AND authors.name <> excluded.name
RETURNING user_id
"""
REVIEWED_BY = "SELECT DISTINCT product_id FROM reviews WHERE user_id = $1"
# A newer announcement of a product's availability; answers whether it changed (no row: an older one,
# or a product we do not have).
SET_IN_STOCK = """
WITH before AS (
    SELECT id, in_stock FROM products WHERE id = $1 AND stock_changed_at < $3 FOR UPDATE
)
UPDATE products p SET in_stock = $2, stock_changed_at = $3 FROM before WHERE p.id = before.id
RETURNING before.in_stock <> $2 AS changed
"""

# -- categories and brands ----------------------------------------------------------------------------

ALL_CATEGORIES = (
    "SELECT id, parent_id, name, slug, description, position FROM categories ORDER BY position, name"
)
CATEGORY = """
SELECT c.id, c.name, c.slug, c.description, c.position, c.parent_id, c.created_at, c.updated_at,
       category_path(c.id)::text AS path,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', k.id, 'name', k.name, 'slug', k.slug)
                                  ORDER BY k.position, k.name), '[]')
        FROM categories k WHERE k.parent_id = c.id)::text AS children
FROM categories c WHERE c.id = $1
"""
CATEGORY_FOR_UPDATE = (
    "SELECT name, slug, parent_id, description, position FROM categories WHERE id = $1 FOR UPDATE"
)
INSERT_CATEGORY = """
INSERT INTO categories (id, parent_id, name, slug, description, position) VALUES ($1, $2, $3, $4, $5, $6)
"""
UPDATE_CATEGORY = """
UPDATE categories
SET parent_id = $2, name = $3, slug = $4, description = $5, position = $6, updated_at = now()
WHERE id = $1
"""
# Moving a category below itself or one of its descendants would make a cycle.
WOULD_CYCLE = "SELECT $2::uuid IN (SELECT category_subtree($1))"
CATEGORY_IN_USE = """
SELECT EXISTS (SELECT 1 FROM categories WHERE parent_id = $1)
    OR EXISTS (SELECT 1 FROM products WHERE category_id = $1)
"""
DELETE_CATEGORY = "DELETE FROM categories WHERE id = $1"
PRODUCTS_BELOW = """
SELECT id FROM products WHERE category_id IN (SELECT category_subtree($1)) AND deleted_at IS NULL
"""

ALL_BRANDS = (
    "SELECT id, name, slug, description, logo_url, created_at, updated_at FROM brands ORDER BY name, id"
)
BRAND = "SELECT id, name, slug, description, logo_url, created_at, updated_at FROM brands WHERE id = $1"
BRAND_FOR_UPDATE = "SELECT name, slug, description, logo_url FROM brands WHERE id = $1 FOR UPDATE"
INSERT_BRAND = "INSERT INTO brands (id, name, slug, description, logo_url) VALUES ($1, $2, $3, $4, $5)"
UPDATE_BRAND = """
UPDATE brands SET name = $2, slug = $3, description = $4, logo_url = $5, updated_at = now() WHERE id = $1
"""
BRAND_IN_USE = "SELECT EXISTS (SELECT 1 FROM products WHERE brand_id = $1)"
DELETE_BRAND = "DELETE FROM brands WHERE id = $1"
PRODUCTS_OF_BRAND = "SELECT id FROM products WHERE brand_id = $1 AND deleted_at IS NULL"

# -- constraint errors, said in the client's terms ----------------------------------------------------

_CONFLICTS = {
    "products_slug_key": ("slug", "Another product already has this slug"),
    "product_variants_sku_key": ("variants", "A variant SKU is already used by another product"),
    "categories_slug_key": ("slug", "Another category already has this slug"),
    "brands_slug_key": ("slug", "Another brand already has this slug"),
    "brands_name": ("name", "Another brand already has this name"),
    "reviews_product_id_user_id_key": ("productId", "You have already reviewed this product"),
}
_MISSING = {
    "products_category_id_fkey": ("categoryId", "No category has this id"),
    "products_brand_id_fkey": ("brandId", "No brand has this id"),
    "categories_parent_id_fkey": ("parentId", "No category has this id"),
}


@contextlib.contextmanager
def explained() -> Iterator[None]:
    """Turn unique and foreign-key violations into a 409 or a 400 that names the field."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        field, message = _CONFLICTS.get(exc.constraint_name or "", ("body", "The resource already exists"))
        raise Conflict(message, [FieldError(field, message)]) from None
    except asyncpg.ForeignKeyViolationError as exc:
        if (known := _MISSING.get(exc.constraint_name or "")) is None:
            raise
        raise invalid(*known) from None


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 80) -> str:
    """A URL slug of `text`: ASCII letters and digits joined by hyphens ("Đà Lạt Café" -> "da-lat-cafe")."""
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = folded.encode("ascii", "ignore").decode().lower()
    return _NOT_SLUG.sub("-", ascii_text).strip("-")[:max_length].strip("-") or "item"
