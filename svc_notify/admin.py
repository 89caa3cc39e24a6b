"""Admin routes: templates per channel and locale (versioned, validated, previewed), and the search over
every delivery."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import deps
from kit.errors import NotFound, invalid
from kit.http import JSON, Page, body_of, page_of, paging, sorting
from kit.identity import require_role
from kit.openapi import doc
from svc_notify import segments, store
from svc_notify.messages import Variant as Text
from svc_notify.messages import compose, current_variant
from svc_notify.preferences import CHANNELS, LOCALES
from svc_notify.schemas import (
    AdminNotification,
    Preview,
    PreviewRequest,
    SmsLength,
    Template,
    TemplateEdit,
    TemplateSummary,
    Variant,
)
from svc_notify.templates import SAMPLES, unsupported_placeholders

NO_TEMPLATE = "Template not found"


def _sms_length(channel: str, body: str | None) -> SmsLength | None:
    if channel != "sms" or body is None:
        return None
    counted = segments.count(body)
    return SmsLength(encoding=counted.encoding, characters=counted.units, segments=counted.segments)


def _variant(row: asyncpg.Record) -> Variant:
    return Variant(**dict(row), sms=_sms_length(row["channel"], row["body"]))


async def _template(conn: asyncpg.Connection, name: str) -> Template:
    meta = await conn.fetchrow(store.TEMPLATE_META, name)
    if meta is None:
        raise NotFound(NO_TEMPLATE)
    rows = await conn.fetch(store.CURRENT_VARIANTS, name)
    variants = [_variant(row) for row in rows if row["body"] is not None]
    return Template(**dict(meta), variants=variants)


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


@doc("Every template the code sends, with its kind, channels and placeholders", auth="Admin")
async def list_templates(request: Request) -> Response:
    require_role(request, "Admin")
    rows = await deps(request).db.fetch(store.TEMPLATE_NAMES)
    return JSON([TemplateSummary(**dict(row)) for row in rows])


@doc("A template with the current text of each channel and locale", response=Template, auth="Admin")
async def get_template(request: Request) -> Response:
    require_role(request, "Admin")
    async with deps(request).db.acquire() as conn:
        return JSON(await _template(conn, request.path_params["name"]))


@doc(
    "A new version of one channel and locale of a template (default email, en)",
    body=TemplateEdit,
    response=Template,
    auth="Admin",
)
async def put_template(request: Request) -> Response:
    require_role(request, "Admin")
    name = request.path_params["name"]
    edit = await body_of(request, TemplateEdit)
    async with deps(request).db.acquire() as conn, conn.transaction():
        meta = await conn.fetchrow(store.TEMPLATE_META_LOCKED, name)
        if meta is None:
            raise NotFound(NO_TEMPLATE)
        if edit.channel not in meta["channels"]:
            raise invalid("channel", f"channel: {name} is sent on {', '.join(meta['channels'])} only")
        if edit.subject is not None:
            _check_placeholders("subject", edit.subject, meta["placeholders"])
        _check_placeholders("body", edit.body, meta["placeholders"])
        await conn.execute(store.ADD_VERSION, name, edit.channel, edit.locale, edit.subject, edit.body)
        return JSON(await _template(conn, name))


def _channel_and_locale(request: Request) -> tuple[str, str]:
    channel, locale = request.path_params["channel"], request.path_params["locale"]
    if channel not in CHANNELS or locale not in LOCALES:
        raise NotFound(NO_TEMPLATE)
    return channel, locale


@doc(
    "Retire one channel and locale of a template (kept in its history); messages fall back to en, and "
    "with no en text either they wait in the DLQ until a text is back",
    status=204,
    auth="Admin",
)
async def delete_variant(request: Request) -> Response:
    require_role(request, "Admin")
    name = request.path_params["name"]
    channel, locale = _channel_and_locale(request)
    async with deps(request).db.acquire() as conn, conn.transaction():
        if await conn.fetchrow(store.TEMPLATE_META_LOCKED, name) is None:
            raise NotFound(NO_TEMPLATE)
        current = await conn.fetchrow(store.CURRENT_VARIANTS_IN, name, channel, [locale])
        if current is None or current["body"] is None:
            raise NotFound(NO_TEMPLATE)
        await conn.execute(store.ADD_VERSION, name, channel, locale, None, None)
    return Response(status_code=204)


@doc("Every version of one channel and locale of a template, newest first", auth="Admin")
async def variant_history(request: Request) -> Response:
    require_role(request, "Admin")
    channel, locale = _channel_and_locale(request)
    rows = await deps(request).db.fetch(store.VARIANT_HISTORY, request.path_params["name"], channel, locale)
    if not rows:
        raise NotFound(NO_TEMPLATE)
    return JSON([_variant(row) for row in rows])


@doc(
    "Render a template's current text with sample values (or those given), with its SMS length",
    body=PreviewRequest,
    response=Preview,
    auth="Admin",
)
async def preview(request: Request) -> Response:
    require_role(request, "Admin")
    name = request.path_params["name"]
    asked = await body_of(request, PreviewRequest)
    async with deps(request).db.acquire() as conn:
        meta = await conn.fetchrow(store.TEMPLATE_META, name)
        if meta is None:
            raise NotFound(NO_TEMPLATE)
        text: Text | None = await current_variant(conn, name, asked.channel, asked.locale)
    if text is None:
        raise NotFound(f"{name} has no {asked.channel} text in {asked.locale} or en")
    values = {key: SAMPLES.get(key, key) for key in meta["placeholders"]} | asked.values
    subject, body = compose(text, values)
    return JSON(
        Preview(
            name=name,
            channel=asked.channel,
            locale=text.locale,
            version=text.version,
            subject=subject,
            body=body,
            sms=_sms_length(asked.channel, body),
        )
    )


def _instant(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(name, f"{name}: must be an ISO 8601 time") from None
    if at.tzinfo is None:
        raise invalid(name, f"{name}: must carry its offset (Z for UTC)")
    return at


@doc(
    "Search every delivery (`?status=&channel=&recipient=&template=&from=&to=`, newest first or "
    "`?sortOrder=asc`)",
    response=Page,
    auth="Admin",
)
async def search(request: Request) -> Response:
    require_role(request, "Admin")
    query = request.query_params
    page, (_, direction) = paging(query, AdminNotification), sorting(query, ("createdAt",))
    status, channel = query.get("status") or None, query.get("channel") or None
    if status is not None and status not in store.STATUSES:
        raise invalid("status", f"status must be one of {', '.join(store.STATUSES)}")
    if channel is not None and channel not in CHANNELS:
        raise invalid("channel", f"channel must be one of {', '.join(CHANNELS)}")
    filters = (
        status,
        channel,
        query.get("recipient") or None,
        query.get("template") or None,
        _instant(request, "from"),
        _instant(request, "to"),
    )
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(store.SEARCH[direction], *filters, page.page_size, page.offset)
        total = rows[0]["total"] if rows else await conn.fetchval(store.COUNT_SEARCH, *filters)
    items = [AdminNotification(**{k: v for k, v in row.items() if k != "total"}) for row in rows]
    return JSON(page_of(items, page, total))


routes = [
    Route("/api/notifications/search", search, methods=["GET"]),
    Route("/api/notifications/templates", list_templates, methods=["GET"]),
    Route("/api/notifications/templates/{name}", get_template, methods=["GET"]),
    Route("/api/notifications/templates/{name}", put_template, methods=["PUT"]),
    Route("/api/notifications/templates/{name}/preview", preview, methods=["POST"]),
    Route("/api/notifications/templates/{name}/{channel}/{locale}", delete_variant, methods=["DELETE"]),
    Route(
        "/api/notifications/templates/{name}/{channel}/{locale}/versions", variant_history, methods=["GET"]
    ),
]
