"""svc_notify: email, SMS and push for events; the caller's notifications and push subscriptions; the
Admin's templates and search (svc_notify.admin) and DLQ re-drive (svc_notify.dead_letters); delivery
reports (svc_notify.reports)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Deps, Service, deps, make_app
from kit.errors import NotFound, invalid
from kit.http import JSON, Page, body_of, page_of, paging, path_uuid, search_pattern, sorting
from kit.identity import require_user
from kit.openapi import doc, listing, page
from svc_notify import admin, config, dead_letters, events, reports, store
from svc_notify.channels import Sender
from svc_notify.channels.email import EmailSender
from svc_notify.channels.push import PushSender
from svc_notify.channels.sms import SmsSender
from svc_notify.config import NotifyConfig
from svc_notify.context import CONTEXT
from svc_notify.dispatch import ChannelWorker, dispatch
from svc_notify.schemas import Notification, PushKey, Subscription, SubscriptionInput

NO_SUBSCRIPTION = "Push subscription not found"


@doc(
    "The caller's notifications on every channel, newest first (`?search=` in subject or template, "
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


@doc("The VAPID public key to subscribe with (`applicationServerKey`)", response=PushKey, auth="user")
async def push_key(request: Request) -> Response:
    require_user(request)
    return JSON(PushKey(application_server_key=CONTEXT.of(deps(request)).push_key))


@doc(
    "Register a browser's push subscription for the caller (again: it moves to the caller)",
    body=SubscriptionInput,
    response=Subscription,
    status=201,
    auth="user",
)
async def add_subscription(request: Request) -> Response:
    who = require_user(request)
    body = await body_of(request, SubscriptionInput)
    d = deps(request)
    endpoint = urlsplit(body.endpoint)
    if endpoint.scheme != "https" and not d.settings.is_dev:
        raise invalid("endpoint", "endpoint: must be an https URL")
    if not config.push_host_allowed(CONTEXT.of(d).config, endpoint.hostname or ""):
        raise invalid("endpoint", "endpoint: not a known push service")
    row = await d.db.fetchrow(
        store.ADD_SUBSCRIPTION, uuid.uuid4(), who.user_id, body.endpoint, body.keys.p256dh, body.keys.auth
    )
    return JSON(Subscription(**dict(row)), 201)


@doc("The caller's push subscriptions", response=Page, auth="user")
async def my_subscriptions(request: Request) -> Response:
    who = require_user(request)
    page = paging(request.query_params, Subscription)
    rows = await deps(request).db.fetch(store.USER_SUBSCRIPTIONS, who.user_id)
    items = [Subscription(**dict(row)) for row in rows[page.offset : page.offset + page.page_size]]
    return JSON(page_of(items, page, len(rows)))


@doc("Remove one of the caller's push subscriptions", status=204, auth="user")
async def remove_subscription(request: Request) -> Response:
    who = require_user(request)
    subscription_id = path_uuid(request, "id", NO_SUBSCRIPTION)
    if await deps(request).db.execute(store.REMOVE_SUBSCRIPTION, subscription_id, who.user_id) == "DELETE 0":
        raise NotFound(NO_SUBSCRIPTION)
    return Response(status_code=204)


async def dispatcher(d: Deps) -> None:
    """The job that sends what the handlers queued (svc_notify.dispatch)."""
    context = CONTEXT.of(d)
    senders: tuple[Sender, ...] = (
        EmailSender(d.settings),
        SmsSender(context.twilio, d.settings.public_url),
        PushSender(d.db, context.vapid, context.config),
    )
    policies = context.config.policies
    workers = [ChannelWorker(d.db, sender, policies[sender.channel]) for sender in senders]
    assert d.settings.database_direct_url is not None
    await dispatch(workers, d.settings.database_direct_url)


routes = [
    Route("/api/notifications", my_notifications, methods=["GET"]),
    Route("/api/notifications/push/key", push_key, methods=["GET"]),
    Route("/api/notifications/push/subscriptions", add_subscription, methods=["POST"]),
    Route("/api/notifications/push/subscriptions", my_subscriptions, methods=["GET"]),
    Route("/api/notifications/push/subscriptions/{id}", remove_subscription, methods=["DELETE"]),
    *reports.routes,
    *admin.routes,
    *dead_letters.routes,
]

service = Service(
    "notify",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    resources=[CONTEXT],
    jobs=[dispatcher],
    uses_redis=False,
    settings=NotifyConfig,
)
app = make_app(service)
