"""svc_notify: mail for events, the caller's notifications, template admin (CONTRACT.md sections 4, 7)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import NotFound, invalid
from kit.http import JSON, body_of, page_of, paging, search_pattern, sorting
from kit.identity import require_role, require_user
from kit.openapi import doc, listing, page
from svc_notify import events, store
from svc_notify.schemas import Notification, Template, TemplateEdit
from svc_notify.templates import unsupported_placeholders


def _template(row: asyncpg.Record | None) -> Template:
    if row is None:
        raise NotFound("Template not found")
    return Template(
        name=row["name"],
        subject=row["subject"],
        body=row["body"],
        placeholders=row["placeholders"],
        updated_at=row["updated_at"],
    )


def _check_placeholders(field: str, text: str, supported: list[str]) -> None:
    try:
        unknown = unsupported_placeholders(text, supported)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None
    if unknown:
        raise invalid(
            field,
            f"Unsupported placeholders: {', '.join(unknown)}; this template supports {', '.join(supported)}",
        )


@doc(
    "The caller's notifications, newest first (`?search=` in subject or template, "
    "`?sortBy=createdAt|sentAt|status|subject&sortOrder=`)",
    response=page(Notification),
    auth="user",
    params=listing(Notification, sort=store.SORTS, search="subject and template"),
)
async def my_notifications(request: Request) -> Response:
    who = require_user(request)
    query = request.query_params
    page, sort, search = paging(query, Notification), sorting(query, store.SORTS), search_pattern(query)
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(
            store.USER_NOTIFICATIONS[sort], who.user_id, search, page.page_size, page.offset
        )
        total = (
            rows[0]["total"]
            if rows
            else await conn.fetchval(store.COUNT_USER_NOTIFICATIONS, who.user_id, search)
        )
    items = [Notification(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
    return JSON(page_of(items, page, total))


TEMPLATE_NAME = {"name": {"type": "string", "minLength": 1}}


@doc(
    "A mail template with the placeholders it supports",
    response=Template,
    auth="Admin",
    path=TEMPLATE_NAME,
    errors=(404,),
)
async def get_template(request: Request) -> Response:
    require_role(request, "Admin")
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(store.TEMPLATE, request.path_params["name"])
    return JSON(_template(row))


@doc(
    "Replace a mail template's subject and body",
    body=TemplateEdit,
    response=Template,
    auth="Admin",
    path=TEMPLATE_NAME,
)
async def put_template(request: Request) -> Response:
    require_role(request, "Admin")
    name = request.path_params["name"]
    edit = await body_of(request, TemplateEdit)
    async with deps(request).db.acquire() as conn, conn.transaction():
        supported = _template(await conn.fetchrow(store.TEMPLATE, name)).placeholders
        _check_placeholders("subject", edit.subject, supported)
        _check_placeholders("body", edit.body, supported)
        row = await conn.fetchrow(store.UPDATE_TEMPLATE, name, edit.subject, edit.body)
    return JSON(_template(row))


routes = [
    Route("/api/notifications", my_notifications, methods=["GET"]),
    Route("/api/notifications/templates/{name}", get_template, methods=["GET"]),
    Route("/api/notifications/templates/{name}", put_template, methods=["PUT"]),
]

service = Service(
    "notify",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    uses_redis=False,
)
app = make_app(service)
