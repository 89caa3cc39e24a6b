"""Orders as people read them: the owner's history, one order in full, a seller's orders."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg
import msgspec

from kit.errors import invalid
from kit.http import Page, Paging, page_of, sorting
from svc_order import store
from svc_order.schemas import (
    HistoryEntry,
    Order,
    OrderItem,
    OrderSummary,
    SellerOrder,
    ShippingAddress,
    Status,
)

_items = msgspec.json.Decoder(list[OrderItem])
_history = msgspec.json.Decoder(list[HistoryEntry])
_address = msgspec.json.Decoder(ShippingAddress)
STATUSES: frozenset[str] = frozenset(Status.__args__)  # type: ignore[attr-defined]


def status_filter(query: Mapping[str, str]) -> str | None:
    """`?status=` (one of the statuses), or None for all."""
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(sorted(STATUSES))}")
    return status


def sort_of(query: Mapping[str, str]) -> tuple[str, str]:
    """`?sortBy=createdAt|totalAmount` (default createdAt) and `?sortOrder=asc|desc` (default desc)."""
    return sorting(query, store.ORDER_SORTS)


async def order(
    conn: asyncpg.Connection, order_id: uuid.UUID, owner: uuid.UUID | None, payment_url: str
) -> Order | None:
    """The order with its items and history; None when it does not exist or is not `owner`'s."""
    row = await conn.fetchrow(store.ORDER, order_id, owner)
    if row is None:
        return None
    fields = dict(row)
    return Order(
        **{
            **fields,
            "shipping_address": _address.decode(row["shipping_address"]),
            "items": _items.decode(row["items"]),
            "history": _history.decode(row["history"]),
            "payment_url": payment_url if row["status"] == "PENDING" else None,
        }
    )


async def history(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    page: Paging,
    status: str | None,
    sort: tuple[str, str],
    search: str | None,
) -> Page:
    rows = await conn.fetch(store.ORDERS_OF_USER[sort], user_id, status, search, page.page_size, page.offset)
    total = (
        rows[0]["total"] if rows else await conn.fetchval(store.COUNT_ORDERS_OF_USER, user_id, status, search)
    )
    items = [OrderSummary(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
    return page_of(items, page, total)


async def of_seller(
    conn: asyncpg.Connection, seller_id: uuid.UUID, page: Paging, status: str | None, search: str | None
) -> Page:
    rows = await conn.fetch(store.ORDERS_OF_SELLER, seller_id, status, search, page.page_size, page.offset)
    total = (
        rows[0]["total"]
        if rows
        else await conn.fetchval(store.COUNT_ORDERS_OF_SELLER, seller_id, status, search)
    )
    items = [
        SellerOrder(
            id=row["id"],
            order_number=row["order_number"],
            status=row["status"],
            shipping_address=_address.decode(row["shipping_address"]),
            items=_items.decode(row["items"]),
            seller_total=row["seller_total"],
            created_at=row["created_at"],
        )
        for row in rows
    ]
    return page_of(items, page, total)
