"""svc_order: the cart, checkout (the saga in flows.py), orders and their workflow (CONTRACT.md section 4)."""

from __future__ import annotations

import uuid
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import NotFound, invalid
from kit.http import JSON, body_of, paging, path_uuid, search_pattern
from kit.identity import Identity, require_role, require_user
from kit.openapi import choice, doc, header, listing, page, uuid_param
from svc_order import cart, downstream, flows, idempotency, intents, jobs, projection, store, views, workflow
from svc_order.config import OrderConfig
from svc_order.schemas import (
    AddItem,
    CancelRequest,
    Cart,
    CheckoutRequest,
    Order,
    OrderSummary,
    Placed,
    SellerOrder,
    SetQuantity,
    StatusChange,
)

# -- cart ------------------------------------------------------------------------------------------------


def _product_id(request: Request) -> uuid.UUID:
    return path_uuid(request, "productId", "This product is not in the cart")


VARIANT = uuid_param("variantId", "The line of this variant, when the product has several in the cart")
ORDER_STATUS = choice("status", sorted(views.STATUSES), "Only orders in this status")


def _variant_query(request: Request) -> uuid.UUID | None:
    raw = request.query_params.get("variantId")
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise invalid("variantId", "variantId must be a UUID") from None


@doc("The caller's cart at current prices", response=Cart, auth="user")
async def get_cart(request: Request) -> Response:
    who = require_user(request)
    return JSON(await cart.show(deps(request), who.user_id))


@doc(
    "Add a product (quantities of the same product and variant add up, at most 99)",
    body=AddItem,
    response=Cart,
    auth="user",
    errors=(422,),
)
async def add_item(request: Request) -> Response:
    who = require_user(request)
    body = await body_of(request, AddItem)
    return JSON(await cart.add(deps(request), who.user_id, body))


@doc(
    "Change a line's quantity (0 removes it); `?variantId=` picks the line when the product has several",
    body=SetQuantity,
    response=Cart,
    auth="user",
    params=(VARIANT,),
    errors=(422,),
)
async def set_quantity(request: Request) -> Response:
    who = require_user(request)
    product_id, variant_id = _product_id(request), _variant_query(request)
    body = await body_of(request, SetQuantity)
    return JSON(await cart.set_quantity(deps(request), who.user_id, product_id, variant_id, body.quantity))


@doc(
    "Remove a product (every variant of it, or `?variantId=`'s line)",
    response=Cart,
    auth="user",
    params=(VARIANT,),
)
async def remove_item(request: Request) -> Response:
    who = require_user(request)
    product_id, variant_id = _product_id(request), _variant_query(request)
    return JSON(await cart.remove(deps(request), who.user_id, product_id, variant_id))


@doc("Empty the cart", status=204, auth="user")
async def clear_cart(request: Request) -> Response:
    who = require_user(request)
    await deps(request).db.execute(store.CLEAR_CART, who.user_id)
    return Response(status_code=204)


# -- checkout and orders ---------------------------------------------------------------------------------


@doc(
    "Turn the cart into a PENDING order: discount and stock held, payment URL returned. "
    "`Idempotency-Key` header: the same key and body replay the first answer; another body is a 409",
    body=CheckoutRequest,
    response=Placed,
    status=201,
    auth="user",
    params=(
        header(
            idempotency.HEADER,
            "Replays the first answer for the same key and body (kept 24 h); another body is a 409",
            idempotency.MAX_KEY_LENGTH,
        ),
    ),
    errors=(409, 422),
)
async def checkout(request: Request) -> Response:
    who = require_user(request)
    key = idempotency.key_of(request)
    body = await body_of(request, CheckoutRequest)
    answer = await flows.checkout(deps(request), who, body, key)
    return answer.response()


def _order_id(request: Request) -> uuid.UUID:
    return path_uuid(request, "orderId", "Order not found")


@doc(
    "The caller's orders, newest first (`?status=`, `?sortBy=createdAt|totalAmount`, `?search=` in the "
    "order number or a product's name)",
    response=page(OrderSummary),
    auth="user",
    params=(
        *listing(OrderSummary, sort=store.ORDER_SORTS, search="the order number and product names"),
        ORDER_STATUS,
    ),
)
async def list_orders(request: Request) -> Response:
    who = require_user(request)
    query = request.query_params
    page, status, sort = paging(query, OrderSummary), views.status_filter(query), views.sort_of(query)
    search = search_pattern(query)
    async with deps(request).db.acquire() as conn:
        return JSON(await views.history(conn, who.user_id, page, status, sort, search))


@doc(
    "Orders holding the calling seller's products, with only those lines (Admin: `?sellerId=`; "
    "`?status=`, `?search=` in the order number or a product's name)",
    response=page(SellerOrder),
    auth="Seller",
    params=(
        *listing(SellerOrder, search="the order number and product names"),
        ORDER_STATUS,
        uuid_param("sellerId", "Admin only: whose lines to list (default: the caller's)"),
    ),
)
async def seller_orders(request: Request) -> Response:
    who = require_role(request, "Seller", "Admin")
    query = request.query_params
    seller = who.user_id
    if who.is_admin and (raw := query.get("sellerId")):
        try:
            seller = uuid.UUID(raw)
        except ValueError:
            raise invalid("sellerId", "sellerId must be a UUID") from None
    page, status, search = paging(query, SellerOrder), views.status_filter(query), search_pattern(query)
    async with deps(request).db.acquire() as conn:
        return JSON(await views.of_seller(conn, seller, page, status, search))


async def _order_answer(request: Request, who: Identity, order_id: uuid.UUID) -> Response:
    d = deps(request)
    async with d.db.acquire() as conn:
        found = await views.order(
            conn, order_id, None if who.is_admin else who.user_id, flows.payment_url(d, order_id)
        )
    if found is None:
        raise NotFound("Order not found")
    return JSON(found)


@doc(
    "An order with its items and history (its owner or an Admin; anyone else gets 404)",
    response=Order,
    auth="user",
)
async def get_order(request: Request) -> Response:
    who = require_user(request)
    return await _order_answer(request, who, _order_id(request))


@doc(
    "Cancel an order before it ships (its owner or an Admin)",
    body=CancelRequest,
    body_optional=True,
    response=Order,
    auth="user",
    errors=(409,),
)
async def cancel_order(request: Request) -> Response:
    who = require_user(request)
    order_id = _order_id(request)
    body = await body_of(request, CancelRequest) if await request.body() else CancelRequest()
    reason = "cancelled_by_admin" if who.is_admin else "cancelled_by_customer"
    async with deps(request).db.acquire() as conn, conn.transaction():
        # Someone else's order is as unknown as one that does not exist.
        owner = await conn.fetchval(store.OWNER_OF, order_id)
        if owner is None or (owner != who.user_id and not who.is_admin):
            raise NotFound("Order not found")
        await workflow.change(conn, order_id, "CANCELLED", who.user_id, body.reason or reason, reason)
    return await _order_answer(request, who, order_id)


@doc(
    "Move an order along its workflow: PROCESSING, SHIPPED, DELIVERED or CANCELLED",
    body=StatusChange,
    response=Order,
    auth="Admin",
    errors=(409,),
)
async def set_status(request: Request) -> Response:
    who = require_role(request, "Admin")
    order_id = _order_id(request)
    body = await body_of(request, StatusChange)
    if body.status not in workflow.ADMIN_TARGETS:
        raise invalid("status", f"status must be one of {', '.join(sorted(workflow.ADMIN_TARGETS))}")
    async with deps(request).db.acquire() as conn, conn.transaction():
        note = body.note or f"set by an admin to {body.status}"
        await workflow.change(conn, order_id, body.status, who.user_id, note, "cancelled_by_admin")
    return await _order_answer(request, who, order_id)


routes = [
    Route("/api/cart", get_cart, methods=["GET"]),
    Route("/api/cart", clear_cart, methods=["DELETE"]),
    Route("/api/cart/items", add_item, methods=["POST"]),
    Route("/api/cart/items/{productId}", set_quantity, methods=["PUT"]),
    Route("/api/cart/items/{productId}", remove_item, methods=["DELETE"]),
    Route("/api/orders/checkout", checkout, methods=["POST"]),
    Route("/api/orders", list_orders, methods=["GET"]),
    Route("/api/orders/seller", seller_orders, methods=["GET"]),
    Route("/api/orders/{orderId}", get_order, methods=["GET"]),
    Route("/api/orders/{orderId}/cancel", cancel_order, methods=["POST"]),
    Route("/api/orders/{orderId}/status", set_status, methods=["PATCH"]),
]

service = Service(
    "order",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers={**workflow.handlers, **projection.handlers},
    resources=[downstream.CLIENTS, intents.JOURNAL],
    jobs=[jobs.sweeper, jobs.intent_recovery, jobs.cleanup],
    uses_redis=False,
    settings=OrderConfig,
)
app = make_app(service)
