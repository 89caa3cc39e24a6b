"""svc_order's projection of the catalog (event-carried state): the products a cart and a checkout price.

`catalog_products` in order_db holds, per product, what a cart line and an order item show (name, price,
variants with their prices, first image, seller, category) and whether it is for sale (active, not
deleted). It is kept from svc_product's product.created/updated/deleted, so cart changes and checkouts
read prices with a statement of their own database instead of an HTTP call to the catalog.

- A product the projection does not know (its event not landed yet, or an empty table after a fresh
  deploy: the demo catalog is seeded without events) is read from the catalog's batch endpoint once and
  written here (`Catalog.for_sale`; a product the catalog does not sell is not written, and is asked
  about again next time).
- Every write carries the product's `version` (svc_product raises it on every change; the catalog's
  answer carries it too) and replaces a row only with a newer one: events arriving out of order, a
  retried event, or a catalog read overtaken by an event never put an older state back.
- A product that is known and not for sale is refused without asking the catalog.
- What a checkout charges is the projection's price when it reads the cart (README, "Cart and
  checkout"): a change reaches it as soon as its event is consumed, milliseconds after svc_product's
  commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import asyncpg
import msgspec

from kit.app import Deps
from kit.bus import Event, Handler
from svc_order import downstream, store
from svc_order.downstream import Product, Variant

_variants = msgspec.json.Decoder(list[Variant])
_encode = msgspec.json.Encoder().encode


def _product_of(row: asyncpg.Record) -> Product | None:
    """The product in a row carrying `product_id` and `store.PRODUCT_COLUMNS`: None when not for sale."""
    if not row["for_sale"]:
        return None
    return Product(
        row["product_id"],
        row["name"],
        row["price"],
        row["seller_id"],
        row["category_id"],
        row["image"],
        _variants.decode(row["variants"]),
        row["version"],
    )


def known_in(rows: Iterable[asyncpg.Record]) -> dict[uuid.UUID, Product | None]:
    """The projected products of rows that joined `store.PRODUCT_COLUMNS` to their `product_id` (products
    the projection does not know are left out)."""
    return {row["product_id"]: _product_of(row) for row in rows if row["version"] is not None}


async def keep(db: asyncpg.Pool | asyncpg.Connection, rows: Sequence[tuple[Product, bool]]) -> None:
    """Write each product with whether it is for sale, where the projection holds an older version."""
    await db.execute(
        store.KEEP_PRODUCTS,
        [p.id for p, _ in rows],
        [p.version for p, _ in rows],
        [for_sale for _, for_sale in rows],
        [p.name for p, _ in rows],
        [p.price for p, _ in rows],
        [p.seller_id for p, _ in rows],
        [p.category_id for p, _ in rows],
        [p.image for p, _ in rows],
        [_encode(p.variants).decode() for p, _ in rows],
    )


async def products(
    d: Deps,
    ids: Iterable[uuid.UUID],
    known: Mapping[uuid.UUID, Product | None] | None = None,
    conn: asyncpg.Connection | None = None,
) -> dict[uuid.UUID, Product | None]:
    """Every id of `ids` with its product, None when it is not for sale (or does not exist).

    `known`: products already read from the projection (by a statement that joined it); the rest are
    read with `conn` (the pool by default), and those the projection does not know from the catalog
    (a 503 if it is down), then written to the projection through the pool, outside any transaction
    of `conn`."""
    asked = list(dict.fromkeys(ids))
    found: dict[uuid.UUID, Product | None] = dict(known or {})
    wanted = [product_id for product_id in asked if product_id not in found]
    if wanted:
        for row in await (conn or d.db).fetch(store.PRODUCTS, wanted):
            found[row["product_id"]] = _product_of(row)
        unknown = [product_id for product_id in wanted if product_id not in found]
        if unknown:
            sold = await downstream.CLIENTS.of(d).catalog.for_sale(unknown)
            if sold:
                await keep(d.db, [(product, True) for product in sold])
            found.update({product.id: product for product in sold})
    return {product_id: found.get(product_id) for product_id in asked}


class ProductChanged(Event):
    """The fields svc_order reads of product.created, product.updated and product.deleted."""

    routing_key = "product.updated"
    product_id: uuid.UUID
    name: str
    price: Decimal
    status: str
    seller_id: uuid.UUID
    category_id: uuid.UUID
    image: str | None
    # Absent from a svc_product older than them (a rolling deploy): such an event only makes svc_order
    # forget the product, which it then reads from the catalog again.
    version: int = 0
    variants: list[Variant] = []

    def product(self) -> Product:
        return Product(
            self.product_id,
            self.name,
            self.price,
            self.seller_id,
            self.category_id,
            self.image,
            self.variants,
            self.version,
        )


async def on_product_changed(conn: asyncpg.Connection, event: ProductChanged) -> None:
    await _keep_or_forget(conn, event, for_sale=event.status == "active")


async def on_product_deleted(conn: asyncpg.Connection, event: ProductChanged) -> None:
    await _keep_or_forget(conn, event, for_sale=False)


async def _keep_or_forget(conn: asyncpg.Connection, event: ProductChanged, for_sale: bool) -> None:
    if event.version:
        await keep(conn, [(event.product(), for_sale)])
    else:
        await conn.execute(store.FORGET_PRODUCT, event.product_id)


handlers: dict[str, Handler] = {
    "product.created": on_product_changed,
    "product.updated": on_product_changed,
    "product.deleted": on_product_deleted,
}
