"""svc_discount: coupons, automatic discounts and campaigns (Admin), validation; gRPC in rpc.py."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import Conflict, NotFound, invalid
from kit.grpc import GrpcServer
from kit.http import (
    JSON,
    Paging,
    body_of,
    decode,
    encode,
    page_of,
    paging,
    path_uuid,
    search_pattern,
    sorting,
)
from kit.identity import identity, require_role, require_user
from kit.openapi import boolean, doc, listing, number, page
from svc_discount import automatic, events, ledger, rpc, store
from svc_discount.config import DiscountConfig
from svc_discount.schemas import (
    Campaign,
    CampaignIn,
    CampaignPatch,
    Discount,
    DiscountIn,
    DiscountPatch,
    Usage,
    Validation,
    money,
)

S = TypeVar("S", bound=msgspec.Struct)

_ORDERS = {"createdAt": "created_at", "code": "lower(code)", "name": "lower(name)"}
LIST_DISCOUNTS = {
    (by, direction): store.LIST_DISCOUNTS.format(order=f"{column} {direction}, id")
    for by, column in _ORDERS.items()
    for direction in ("ASC", "DESC")
}


MAX_CODE = 40
ACTIVE = boolean("active", "Only active (true) or inactive (false) ones")


def _filters(query: Mapping[str, str]) -> tuple[str | None, bool | None]:
    active = query.get("active")
    if active not in (None, "", "true", "false"):
        raise invalid("active", "active must be true or false")
    return search_pattern(query), None if not active else active == "true"


def _discount(row: asyncpg.Record) -> Discount:
    values = {k: row[k] for k in Discount.__struct_fields__}
    for field in ("value", "min_subtotal", "max_discount"):
        if values[field] is not None:
            values[field] = float(values[field])
    return Discount(**values)


def _from_row(model: type[S], row: asyncpg.Record) -> S:
    return model(**{k: row[k] for k in model.__struct_fields__})


def _usage(row: asyncpg.Record) -> Usage:
    return Usage(**{k: row[k] for k in Usage.__struct_fields__ if k != "amount"}, amount=float(row["amount"]))


async def _replacement(
    request: Request,
    conn: asyncpg.Connection,
    what: str,
    key: uuid.UUID,
    current: str,
    model: type[S],
    patch_model: type[msgspec.Struct],
) -> S:
    """The PUT body, or the `current` row (locked) with the PATCH body's fields applied.

    The result is validated as a whole, so a PATCH that breaks a rule across fields is a 400 naming one.
    """
    if request.method == "PUT":
        return await body_of(request, model)
    patch = await body_of(request, patch_model)
    row = await conn.fetchrow(current, key)
    if row is None:
        raise NotFound(f"{what} not found")
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    return decode(encode(msgspec.structs.replace(_from_row(model, row), **changes)), model)


async def _deactivate(request: Request, what: str, statement: str) -> Response:
    require_role(request, "Admin")
    key = path_uuid(request, f"{what.lower()}Id", f"{what} not found")
    async with automatic.changing(deps(request)) as conn:
        if await conn.fetchval(statement, key) is None:
            raise NotFound(f"{what} not found")
    return Response(status_code=204)


def _discount_args(body: DiscountIn) -> list[Any]:
    return [
        body.code,
        body.name,
        body.kind,
        body.value,
        body.min_subtotal,
        body.max_discount,
        body.starts_at,
        body.ends_at,
        body.usage_limit,
        body.per_user_limit,
        body.scope,
        body.category_ids,
        body.product_ids,
        body.auto_apply,
        body.active,
        body.campaign_id,
    ]


async def _write_discount(
    conn: asyncpg.Connection, statement: str, key: uuid.UUID, body: DiscountIn
) -> Response:
    try:
        row = await conn.fetchrow(statement, key, *_discount_args(body))
    except asyncpg.UniqueViolationError:
        raise Conflict(f"A discount with code {body.code} already exists") from None
    except asyncpg.ForeignKeyViolationError:
        raise invalid("campaignId", "no such campaign") from None
    if row is None:
        raise NotFound("Discount not found")
    return JSON(_discount(row), 201 if statement is store.INSERT_DISCOUNT else 200)


# -- discounts ---------------------------------------------------------------------------------------


@doc(
    "Discounts, paginated (`?search=&active=&sortBy=createdAt|code|name&sortOrder=`)",
    response=page(Discount),
    auth="Admin",
    params=(*listing(Discount, sort=_ORDERS, search="code and name"), ACTIVE),
)
async def list_discounts(request: Request) -> Response:
    require_role(request, "Admin")
    query = request.query_params
    page = paging(query, Discount)
    by, direction = sorting(query, _ORDERS)
    search, active = _filters(query)
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(LIST_DISCOUNTS[by, direction], search, active, page.page_size, page.offset)
        total = rows[0]["total"] if rows else await conn.fetchval(store.COUNT_DISCOUNTS, search, active)
    return JSON(page_of([_discount(r) for r in rows], page, total))


@doc(
    "Create a discount (code unique, case-insensitive)",
    body=DiscountIn,
    response=Discount,
    status=201,
    auth="Admin",
    errors=(409,),
)
async def create_discount(request: Request) -> Response:
    require_role(request, "Admin")
    body = await body_of(request, DiscountIn)
    async with automatic.changing(deps(request)) as conn:
        return await _write_discount(conn, store.INSERT_DISCOUNT, uuid.uuid4(), body)


@doc("A discount", response=Discount, auth="Admin")
async def get_discount(request: Request) -> Response:
    require_role(request, "Admin")
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(
            store.DISCOUNT_BY_ID, path_uuid(request, "discountId", "Discount not found")
        )
    if row is None:
        raise NotFound("Discount not found")
    return JSON(_discount(row))


@doc("Replace a discount", body=DiscountIn, response=Discount, auth="Admin", errors=(409,))
async def replace_discount(request: Request) -> Response:
    return await _update_discount(request)


@doc("Change some fields of a discount", body=DiscountPatch, response=Discount, auth="Admin", errors=(409,))
async def patch_discount(request: Request) -> Response:
    return await _update_discount(request)


async def _update_discount(request: Request) -> Response:
    require_role(request, "Admin")
    key = path_uuid(request, "discountId", "Discount not found")
    async with automatic.changing(deps(request)) as conn, conn.transaction():
        body = await _replacement(
            request, conn, "Discount", key, store.DISCOUNT_FOR_UPDATE, DiscountIn, DiscountPatch
        )
        return await _write_discount(conn, store.UPDATE_DISCOUNT, key, body)


@doc("Deactivate a discount (its usage history stays)", status=204, auth="Admin")
async def delete_discount(request: Request) -> Response:
    return await _deactivate(request, "Discount", store.DEACTIVATE_DISCOUNT)


async def _usages(request: Request, statement: str, key: uuid.UUID, page: Paging) -> Response:
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(statement, key, page.page_size, page.offset)
    total = rows[0]["total"] if rows else 0
    return JSON(page_of([_usage(r) for r in rows], page, total))


@doc("A discount's usage history, newest first", response=page(Usage), auth="Admin", params=listing(Usage))
async def discount_usages(request: Request) -> Response:
    require_role(request, "Admin")
    return await _usages(
        request,
        store.USAGES_OF_DISCOUNT,
        path_uuid(request, "discountId", "Discount not found"),
        paging(request.query_params, Usage),
    )


@doc(
    "The caller's discount usage history, newest first",
    response=page(Usage),
    auth="user",
    params=listing(Usage),
)
async def my_usages(request: Request) -> Response:
    who = require_user(request)
    return await _usages(request, store.USAGES_OF_USER, who.user_id, paging(request.query_params, Usage))


@doc(
    "What a code takes off a subtotal (`?subtotal=`); per-user limits count for a signed-in caller",
    response=Validation,
    path={"code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE}},
    params=(number("subtotal", "The order's subtotal (at most 2 decimals)", required=True),),
)
async def validate(request: Request) -> Response:
    raw = request.query_params.get("subtotal")
    if not raw:
        raise invalid("subtotal", "subtotal is required")
    try:
        subtotal = Decimal(raw)
        money("subtotal", subtotal)
    except (InvalidOperation, ValueError):
        raise invalid("subtotal", "subtotal must be a non-negative amount with at most 2 decimals") from None
    who = identity(request)
    code = request.path_params["code"]
    if len(code) > MAX_CODE:
        raise invalid("code", f"at most {MAX_CODE} characters")
    answer = await ledger.validate(deps(request).db, code, who.user_id if who else None, subtotal)
    return JSON(
        Validation(
            valid=answer.valid,
            discount_amount=float(answer.amount),
            reason=answer.reason,
            code=answer.code or code,
        )
    )


# -- campaigns ---------------------------------------------------------------------------------------


async def _campaign_by_id(conn: asyncpg.Connection, key: uuid.UUID) -> Response:
    row = await conn.fetchrow(store.CAMPAIGN, key)
    if row is None:
        raise NotFound("Campaign not found")
    return JSON(_from_row(Campaign, row))


async def _write_campaign(
    conn: asyncpg.Connection, statement: str, key: uuid.UUID, body: CampaignIn
) -> Response:
    written = await conn.fetchval(
        statement, key, body.name, body.description, body.kind, body.starts_at, body.ends_at, body.active
    )
    if written is None:
        raise NotFound("Campaign not found")
    response = await _campaign_by_id(conn, key)
    response.status_code = 201 if statement is store.INSERT_CAMPAIGN else 200
    return response


@doc(
    "Campaigns, paginated (`?search=&active=`)",
    response=page(Campaign),
    auth="Admin",
    params=(*listing(Campaign, search="name and description"), ACTIVE),
)
async def list_campaigns(request: Request) -> Response:
    require_role(request, "Admin")
    page = paging(request.query_params, Campaign)
    search, active = _filters(request.query_params)
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(store.LIST_CAMPAIGNS, search, active, page.page_size, page.offset)
        total = await conn.fetchval(store.COUNT_CAMPAIGNS, search, active)
    return JSON(page_of([_from_row(Campaign, r) for r in rows], page, total))


@doc(
    "Create a campaign (a window grouping coupons; FLASH_SALE for flash sales)",
    body=CampaignIn,
    response=Campaign,
    status=201,
    auth="Admin",
)
async def create_campaign(request: Request) -> Response:
    require_role(request, "Admin")
    body = await body_of(request, CampaignIn)
    async with deps(request).db.acquire() as conn:
        return await _write_campaign(conn, store.INSERT_CAMPAIGN, uuid.uuid4(), body)


@doc("A campaign", response=Campaign, auth="Admin")
async def get_campaign(request: Request) -> Response:
    require_role(request, "Admin")
    async with deps(request).db.acquire() as conn:
        return await _campaign_by_id(conn, path_uuid(request, "campaignId", "Campaign not found"))


@doc("Replace a campaign", body=CampaignIn, response=Campaign, auth="Admin")
async def replace_campaign(request: Request) -> Response:
    return await _update_campaign(request)


@doc("Change some fields of a campaign", body=CampaignPatch, response=Campaign, auth="Admin")
async def patch_campaign(request: Request) -> Response:
    return await _update_campaign(request)


async def _update_campaign(request: Request) -> Response:
    require_role(request, "Admin")
    key = path_uuid(request, "campaignId", "Campaign not found")
    async with deps(request).db.acquire() as conn, conn.transaction():
        body = await _replacement(
            request, conn, "Campaign", key, store.CAMPAIGN_FOR_UPDATE, CampaignIn, CampaignPatch
        )
        return await _write_campaign(conn, store.UPDATE_CAMPAIGN, key, body)


@doc("Deactivate a campaign: its discounts stop applying", status=204, auth="Admin")
async def delete_campaign(request: Request) -> Response:
    return await _deactivate(request, "Campaign", store.DEACTIVATE_CAMPAIGN)


routes = [
    Route("/api/discounts", list_discounts, methods=["GET"]),
    Route("/api/discounts", create_discount, methods=["POST"]),
    Route("/api/discounts/usages/me", my_usages, methods=["GET"]),
    Route("/api/discounts/{code}/validate", validate, methods=["GET"]),
    Route("/api/discounts/{discountId}/usages", discount_usages, methods=["GET"]),
    Route("/api/discounts/{discountId}", get_discount, methods=["GET"]),
    Route("/api/discounts/{discountId}", replace_discount, methods=["PUT"]),
    Route("/api/discounts/{discountId}", patch_discount, methods=["PATCH"]),
    Route("/api/discounts/{discountId}", delete_discount, methods=["DELETE"]),
    Route("/api/campaigns", list_campaigns, methods=["GET"]),
    Route("/api/campaigns", create_campaign, methods=["POST"]),
    Route("/api/campaigns/{campaignId}", get_campaign, methods=["GET"]),
    Route("/api/campaigns/{campaignId}", replace_campaign, methods=["PUT"]),
    Route("/api/campaigns/{campaignId}", patch_campaign, methods=["PATCH"]),
    Route("/api/campaigns/{campaignId}", delete_campaign, methods=["DELETE"]),
]

grpc_server = GrpcServer("discount", rpc.register)
service = Service(
    "discount",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    jobs=[grpc_server, ledger.expire_held_usages, automatic.keep_published],
    resources=[automatic.PUBLISHED],
    uses_redis=False,
    settings=DiscountConfig,
)
app = make_app(service)
