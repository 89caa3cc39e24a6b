"""Admin routes over the parked messages of every service's DLQ (kit.dlq): list, show, re-drive, purge.

They live in svc_notify because it is the service that tells people when something went wrong; the
work itself is kit.dlq's, on a broker connection of each request's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiormq
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit import dlq
from kit.app import deps
from kit.errors import NotFound, ServiceUnavailable
from kit.http import JSON, query_int
from kit.identity import require_role
from kit.openapi import doc

T = TypeVar("T")
BROKER_WAIT = 5.0


async def _on_broker(request: Request, work: Callable[[aiormq.abc.AbstractConnection], Awaitable[T]]) -> T:
    """Run `work` on a broker connection of its own: 503 while the broker is away, 404 for no such DLQ."""
    require_role(request, "Admin")
    try:
        async with asyncio.timeout(BROKER_WAIT):
            connection = await aiormq.connect(deps(request).settings.amqp_url)
        try:
            return await work(connection)
        finally:
            await connection.close()
    except dlq.UnknownQueue:
        raise NotFound(f"No DLQ named {request.path_params.get('queue')}") from None
    except (aiormq.exceptions.AMQPError, ConnectionError, TimeoutError):
        raise ServiceUnavailable("The message broker is unavailable, please retry") from None


@doc("Every DLQ of every service with how many messages it holds", auth="Admin")
async def dead_letter_queues(request: Request) -> Response:
    return JSON(await _on_broker(request, dlq.queues))


@doc("The messages parked in a DLQ, with why they failed (`?limit=`, default 50)", auth="Admin")
async def parked_messages(request: Request) -> Response:
    queue, limit = request.path_params["queue"], query_int(request.query_params, "limit", 50, 1, 500)
    return JSON(await _on_broker(request, lambda connection: dlq.show(connection, queue, limit)))


@doc("Re-publish a DLQ's messages to their consumer (`?limit=`); the inbox drops duplicates", auth="Admin")
async def redrive(request: Request) -> Response:
    queue = request.path_params["queue"]
    limit = query_int(request.query_params, "limit", 0, 0, 1_000_000) or None
    moved = await _on_broker(request, lambda connection: dlq.redrive(connection, queue, limit))
    return JSON({"queue": dlq.dlq_name(queue), "redriven": moved})


@doc("Drop every message of a DLQ", auth="Admin")
async def purge(request: Request) -> Response:
    queue = request.path_params["queue"]
    purged = await _on_broker(request, lambda connection: dlq.purge(connection, queue))
    return JSON({"queue": dlq.dlq_name(queue), "purged": purged})


routes = [
    Route("/api/admin/dlq", dead_letter_queues, methods=["GET"]),
    Route("/api/admin/dlq/{queue}", parked_messages, methods=["GET"]),
    Route("/api/admin/dlq/{queue}", purge, methods=["DELETE"]),
    Route("/api/admin/dlq/{queue}/redrive", redrive, methods=["POST"]),
]
