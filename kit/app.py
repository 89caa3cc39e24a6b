"""The app factory every service uses: lifespan, error handlers, health, metrics and OpenAPI.

A service's `app.py` is its route table plus `app = make_app(Service(...))`; everything a process needs
around it (database created and migrated, Redis, the broker, the outbox relay, consumers, background
jobs, `/health/*`, `/metrics`, `/openapi.json`) is set up here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from kit import cache, db, logs, readiness, settings, telemetry
from kit.bus import Broker, Consumer, Handler
from kit.errors import (
    BusinessRuleViolation,
    Conflict,
    MethodNotAllowed,
    NotFound,
    ShopError,
    ValidationError,
)
from kit.http import JSON
from kit.metrics import Observe, metrics_endpoint
from kit.openapi import document
from kit.relay import OutboxRelay

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Deps:
    """What a running service holds: one of each per process."""

    settings: settings.Settings
    db: asyncpg.Pool
    redis: Redis | None
    broker: Broker | None
    cache: cache.Cache | None = None
    relay: OutboxRelay | None = None
    # Objects a service creates in its `on_start` and its handlers share (an engine, a client pool).
    state: dict[str, Any] = field(default_factory=dict)
    # The service's own readiness checks beside its servers' (Service.ready_checks).
    ready_checks: Mapping[str, readiness.Check] = field(default_factory=dict)


Job = Callable[[Deps], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    """What a service plugs into `make_app`."""

    name: str
    routes: Sequence[BaseRoute]
    migrations: Path | None = None
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    jobs: Sequence[Job] = ()
    on_start: Job | None = None
    uses_redis: bool = True
    uses_broker: bool = True
    # Checks of its own for /health/ready and gRPC health (kit.readiness), e.g. "stock is loaded".
    ready_checks: Mapping[str, readiness.Check] = field(default_factory=dict)


def deps(request: Request) -> Deps:
    return request.app.state.deps  # type: ignore[no-any-return]


async def _connect_db(config: settings.Settings, attempts: int = 30) -> asyncpg.Pool:
    """Create and open the pool, waiting up to `attempts` seconds for PostgreSQL to come up."""
    assert config.database_direct_url, f"{config.service} has no database"
    for attempt in range(attempts):
        try:
            await db.ensure_database(config.database_direct_url)
            return await db.pool_for(config)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if attempt == attempts - 1:
                raise
            log.warning("database unreachable, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def open_database(service: Service, config: settings.Settings) -> asyncpg.Pool:
    """The service's pool, with the database created and migrated first."""
    pool = await _connect_db(config)
    assert config.database_direct_url is not None
    await db.migrate_at(config.database_direct_url, *([service.migrations] if service.migrations else []))
    return pool


@contextlib.asynccontextmanager
async def running(service: Service, config: settings.Settings) -> AsyncIterator[Deps]:
    """Open everything the service needs, run its background work, and close it all in order."""
    pool = await open_database(service, config)
    redis = cache.connect(config.redis_url) if service.uses_redis else None
    deps = Deps(
        config,
        pool,
        redis,
        Broker(config.amqp_url) if service.uses_broker else None,
        cache.Cache(redis, service.name) if redis is not None else None,
        ready_checks=service.ready_checks,
    )
    if service.on_start is not None:
        await service.on_start(deps)
    tasks: list[asyncio.Task[None]] = []
    if deps.broker is not None:
        tasks.append(asyncio.create_task(deps.broker.run(), name="broker"))
        assert config.database_direct_url is not None
        deps.relay = OutboxRelay(pool, deps.broker, listen_url=config.database_direct_url)
        tasks.append(asyncio.create_task(deps.relay.run(), name="outbox-relay"))
        if service.handlers:
            consumer = Consumer(service.name, pool, deps.broker, service.handlers, context=deps)
            tasks.append(asyncio.create_task(consumer.run(), name="consumer"))
    tasks += [asyncio.create_task(job(deps), name=job.__name__) for job in service.jobs]
    try:
        yield deps
    finally:
        # 1. stop background work (consumers stop taking messages; unacked ones are redelivered)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # 2. close the broker, the cache, then the pool once nothing uses it
        if deps.broker is not None:
            await deps.broker.close()
        if deps.redis is not None:
            await deps.redis.aclose()
        await pool.close()


async def _ready(request: Request) -> Response:
    """Checks the service's own dependencies (kit.readiness); 503 with a per-check body when one is down."""
    d = deps(request)
    found = await readiness.report(d)
    healthy = readiness.healthy(found)
    body: dict[str, object] = {"status": "ok" if healthy else "unavailable", "checks": found}
    if d.relay is not None:
        # Informative only: while its listener is being replaced the relay still polls every second.
        body["outbox"] = "listening" if d.relay.listening else "polling"
    return JSON(body, 200 if healthy else 503)


async def _live(request: Request) -> Response:
    return JSON({"status": "ok"})


def _error(exc: ShopError) -> Response:
    return JSON(exc.body(), exc.status, headers=exc.headers)


async def _shop_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShopError)
    return _error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(NotFound(f"No route for {request.method} {request.url.path}"))
    if exc.status_code == 405:
        return _error(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    return JSON({"error": "HttpError", "message": str(exc.detail), "details": []}, exc.status_code)


async def _driver_error(request: Request, exc: Exception) -> Response:
    """Database errors the request itself caused, translated once here instead of in every handler.
    A dependency's own failure is no handler's business: `kit.metrics.Observe` answers it with a 503."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return _error(Conflict("The resource already exists"))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return _error(BusinessRuleViolation("A referenced resource does not exist"))
    return _error(ValidationError("A value is out of range or malformed"))


_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.UniqueViolationError,
    asyncpg.ForeignKeyViolationError,
    asyncpg.CheckViolationError,
    asyncpg.DataError,
)


class _App(Starlette):
    """Starlette without its outermost `ServerErrorMiddleware`.

    `Observe` (right inside it) already answers every unhandled error with the contract's 500 and an
    X-Request-ID and lets none out, so that layer could never act; it only cost a coroutine and a `send`
    wrapper on every request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        assert isinstance(stack, ServerErrorMiddleware)
        return stack.app


def make_app(service: Service, config: settings.Settings | None = None) -> Starlette:
    """The Starlette app of `service`; `config` defaults to the environment's settings."""
    config = config or settings.load(service.name)
    logs.setup(service.name, config.log_level)
    telemetry.setup(service.name, statements=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running(service, config) as app.state.deps:
            yield

    routes: list[BaseRoute] = [
        Route("/health/live", _live),
        Route("/health/ready", _ready),
        Route("/metrics", metrics_endpoint),
        *service.routes,
    ]
    spec = JSON(document(f"svc_{service.name}", service.routes))

    async def openapi(request: Request) -> Response:
        return spec

    routes.append(Route("/openapi.json", openapi))
    handlers: dict[type[Exception] | int, Callable[..., Awaitable[Response]]] = {
        ShopError: _shop_error,
        HTTPException: _http_error,
    }
    handlers.update(dict.fromkeys(_REQUEST_ERRORS, _driver_error))
    app = _App(
        routes=routes,
        middleware=[Middleware(Observe, access_log=config.access_log)],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # Starlette would answer `/api/products/` with a redirect built from the client's Host header
    # (`Host: evil.example` sent people to evil.example). Paths are exact: such a path is a 404.
    app.router.redirect_slashes = False
    return app
