"""The cart: lines in PostgreSQL, priced from svc_order's projection of the catalog when shown and at
checkout.

PostgreSQL (not Redis) holds the lines, so a cart survives a Redis flush or restart like any order
data; a cart view and a cart add are one statement each (the add answers the new cart with its
projected products in the same round trip: svc_order.projection), the other changes one plus one
reading the projected products, and a catalog call only for a product the projection does not know yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from kit.app import Deps
from kit.errors import BusinessRuleViolation, NotFound, ValidationError, invalid
from svc_order import downstream, projection, store
from svc_order.downstream import Product, Variant
from svc_order.schemas import MAX_CART_LINES, MAX_LINE_QUANTITY, AddItem, Cart, CartLine
from svc_order.store import NO_VARIANT

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Row:
    """A cart line as stored."""

    product_id: uuid.UUID
    variant_id: uuid.UUID  # NO_VARIANT for none
    quantity: int
    added_at: datetime

    @property
    def key(self) -> tuple[uuid.UUID, uuid.UUID]:
        return self.product_id, self.variant_id


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A cart line with its product as the catalog sells it now (as far as svc_order's projection knows)."""

    product: Product
    variant: Variant | None
    quantity: int

    @property
    def unit_price(self) -> Decimal:
        return (self.variant.price if self.variant else self.product.price).quantize(CENT)

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def variant_id(self) -> uuid.UUID | None:
        return self.variant.id if self.variant else None


def merged(rows: Iterable[asyncpg.Record]) -> tuple[list[Row], bool]:
    """The cart after a change statement of `store` (lines before it, then the changed lines) and
    whether anything changed."""
    lines: dict[tuple[uuid.UUID, uuid.UUID], Row] = {}
    changed = False
    for record in rows:
        row = Row(record["product_id"], record["variant_id"], record["quantity"], record["added_at"])
        changed = changed or record["changed"]
        if row.quantity:
            lines[row.key] = row
        else:
            lines.pop(row.key, None)
    return sorted(lines.values(), key=lambda r: (r.added_at, r.product_id, r.variant_id)), changed


def priced(product: Product | None, variant_id: uuid.UUID, quantity: int) -> PricedLine | None:
    """The line at the product's current price; None when it can no longer be bought."""
    if product is None:
        return None
    if variant_id == NO_VARIANT:
        return PricedLine(product, None, quantity)
    variant = product.variant(variant_id)
    return PricedLine(product, variant, quantity) if variant is not None else None


async def show(d: Deps, user_id: uuid.UUID) -> Cart:
    records = await d.db.fetch(store.CART, user_id)
    rows, _ = merged(records)
    return await view(d, rows, projection.known_in(records))


async def add(d: Deps, user_id: uuid.UUID, item: AddItem) -> Cart:
    """Add a product the catalog sells now; the same product and variant add up to at most 99.

    One statement while the projection knows the product; one it does not know yet is read from the
    catalog first (`projection.products` writes it there), then the statement runs again."""
    if item.variant_id == NO_VARIANT:  # the cart's own "no variant": the statement would take it so
        raise invalid("variantId", "This product has no such variant")
    key = (item.product_id, item.variant_id or NO_VARIANT)
    adding = (store.ADD_ITEM, user_id, *key, item.quantity, MAX_CART_LINES, MAX_LINE_QUANTITY)
    records = await d.db.fetch(*adding)
    unprojected = _target(records)["version"] is None
    if unprojected and (await projection.products(d, [item.product_id]))[item.product_id] is not None:
        records = await d.db.fetch(*adding)
    known = projection.known_in(records)
    product = known.get(item.product_id)
    if product is None:
        raise BusinessRuleViolation("This product does not exist or is not for sale")
    if item.variant_id is not None and product.variant(item.variant_id) is None:
        raise invalid("variantId", "This product has no such variant")
    rows, changed = merged(record for record in records if not record["target"])
    if not changed:
        if any(row.key == key for row in rows):
            raise BusinessRuleViolation(f"At most {MAX_LINE_QUANTITY} of a product per order")
        raise BusinessRuleViolation(f"A cart holds at most {MAX_CART_LINES} different products")
    return await view(d, rows, known)


def _target(records: Sequence[asyncpg.Record]) -> asyncpg.Record:
    """The row of `store.ADD_ITEM`'s answer that holds the product being added."""
    return next(record for record in records if record["target"])


async def set_quantity(
    d: Deps, user_id: uuid.UUID, product_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int
) -> Cart:
    """Set a line's quantity (0 removes it); without a variant, the product's only line."""
    if quantity == 0:
        return await remove(d, user_id, product_id, variant_id)
    records = await d.db.fetch(store.SET_QUANTITY, user_id, product_id, variant_id, quantity)
    rows, changed = merged(records)
    if not changed:
        if not any(r.product_id == product_id and variant_id in (None, r.variant_id) for r in rows):
            raise NotFound("This product is not in the cart")
        raise ValidationError("The cart holds several variants of this product: name one with ?variantId=")
    return await view(d, rows)


async def remove(d: Deps, user_id: uuid.UUID, product_id: uuid.UUID, variant_id: uuid.UUID | None) -> Cart:
    """Remove a product's line (`variant_id`), or all its lines (None)."""
    rows, _ = merged(await d.db.fetch(store.REMOVE_ITEM, user_id, product_id, variant_id))
    return await view(d, rows)


async def view(d: Deps, rows: Sequence[Row], known: Mapping[uuid.UUID, Product | None] | None = None) -> Cart:
    """The cart as the API shows it: current prices, line totals, lines no longer sold flagged.
    `known`: products already read (`projection.products`)."""
    products = await projection.products(d, (row.product_id for row in rows), known)
    lines: list[CartLine] = []
    subtotal = Decimal(0)
    for row in rows:
        line = priced(products[row.product_id], row.variant_id, row.quantity)
        if line is not None:
            subtotal += line.total
        lines.append(
            CartLine(
                product_id=row.product_id,
                variant_id=None if row.variant_id == NO_VARIANT else row.variant_id,
                quantity=row.quantity,
                product_name=line.product.name if line else None,
                variant_name=line.variant.name if line and line.variant else None,
                image_url=line.product.image if line else None,
                unit_price=float(line.unit_price) if line else None,
                line_total=float(line.total) if line else None,
                available=line is not None,
                added_at=row.added_at,
            )
        )
    shipping = downstream.CLIENTS.of(d).config.shipping_for(subtotal) if subtotal else Decimal(0)
    return Cart(
        items=lines,
        total_quantity=sum(row.quantity for row in rows),
        subtotal=float(subtotal),
        shipping_fee=float(shipping),
        total=float(subtotal + shipping),
    )
