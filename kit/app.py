"""The app factory every service uses: lifespan, error handlers, health, metrics and OpenAPI.

A service's `app.py` is its route table plus `app = make_app(Service(...))`; everything a process needs
around it (database created and migrated, Redis, the broker, the outbox relay, consumers, what the
service opens itself (`Resource`) and its background jobs, `/health/*`, `/metrics`, `/openapi.json`)
is set up here once, and closed again in reverse order (kit.lifecycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

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
from kit.lifecycle import Lifespan, Work
from kit.metrics import Observe, metrics_endpoint
from kit.openapi import document
from kit.relay import OutboxRelay

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class Deps:
    """What a running service holds: one of each per process."""

    settings: settings.Settings
    db: asyncpg.Pool
    redis: Redis | None
    broker: Broker | None
    cache: cache.Cache | None = None
    relay: OutboxRelay | None = None
    # What the service's own `Resource`s opened (an engine, clients): read with `RESOURCE.of(deps)`.
    resources: dict[Resource[Any], Any] = field(default_factory=dict)
    # The service's own readiness checks beside its servers' (Service.ready_checks).
    ready_checks: Mapping[str, readiness.Check] = field(default_factory=dict)


class Resource(Generic[T]):
    """Something a service opens at start, shares with its handlers and jobs, and closes at stop.

    `open(deps)` is its lifespan: an async context manager that yields the object (clients, a pool of
    its own, an engine) and closes it when it exits. The resource is also that object's typed key:
    `CLIENTS.of(deps)` is what `CLIENTS` yielded in this process.
    """

    def __init__(self, name: str, open: Callable[[Deps], AbstractAsyncContextManager[T]]) -> None:
        self.name = name
        self.open = open

    def __repr__(self) -> str:
        return f"Resource({self.name!r})"

    def of(self, deps: Deps) -> T:
        value: T = deps.resources[self]
        return value


Job = Callable[[Deps], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    """What a service plugs into `make_app`."""

    name: str
    routes: Sequence[BaseRoute]
    migrations: Path | None = None
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # Opened in this order once the database, Redis and the broker are there; closed in reverse.
    resources: Sequence[Resource[Any]] = ()
    # Work that runs until the service stops (kit.lifecycle.keep_running); periodic work uses `every`.
    jobs: Sequence[Job] = ()
    uses_redis: bool = True
    uses_broker: bool = True
    # Its own settings beside kit's, read with them at start (e.g. svc_order.config.OrderConfig).
    settings: type[settings.OwnSettings] | None = None
    # Checks of its own for /health/ready and gRPC health (kit.readiness), e.g. "stock is loaded".
    ready_checks: Mapping[str, readiness.Check] = field(default_factory=dict)
    # ASGI layers between `kit.metrics.Observe` and Starlette's routing (a hot route's fast path).
    middleware: Sequence[Middleware] = ()


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


async def _migrate(service: Service, config: settings.Settings) -> None:
    assert config.database_direct_url is not None
    await db.migrate_at(config.database_direct_url, *([service.migrations] if service.migrations else []))


async def open_database(service: Service, config: settings.Settings) -> asyncpg.Pool:
    """The service's pool, with the database created and migrated first."""
    pool = await _connect_db(config)
    await _migrate(service, config)
    return pool


@contextlib.asynccontextmanager
async def running(service: Service, config: settings.Settings) -> AsyncIterator[Deps]:
    """Open everything the service needs, run its background work, and close it all in reverse order,
    also when a later step failed to open; no step waits for a server for ever (kit.lifecycle)."""
    async with Lifespan() as life:
        pool = await life.start("database", _connect_db(config))
        life.on_stop("database", lambda: db.close(pool))
        await life.start("migrations", _migrate(service, config))
        redis = cache.connect(config.redis_url) if service.uses_redis else None
        if redis is not None:
            life.on_stop("redis", redis.aclose)
        broker = Broker(config.amqp_url) if service.uses_broker else None
        if broker is not None:
            life.on_stop("broker", broker.close)
        deps = Deps(
            config,
            pool,
            redis,
            broker,
            cache.Cache(redis, service.name) if redis is not None else None,
            ready_checks=service.ready_checks,
        )
        for resource in service.resources:
            deps.resources[resource] = await life.enter(resource.name, resource.open(deps))
        jobs: list[tuple[str, Work]] = []
        if broker is not None:
            assert config.database_direct_url is not None
            deps.relay = OutboxRelay(pool, broker, listen_url=config.database_direct_url)
            jobs += [("broker", broker.run), ("outbox-relay", deps.relay.run)]
            if service.handlers:
                consumer = Consumer(service.name, pool, broker, service.handlers, context=deps)
                jobs.append(("consumer", consumer.run))
        jobs += [(job.__name__, functools.partial(job, deps)) for job in service.jobs]
        # Stopped first (consumers stop taking messages; unacked ones are redelivered), then what was
        # opened, in reverse: the resources, the broker, Redis, and the pool once nothing uses it.
        life.run(jobs)
        # What starting made lives as long as the process (modules, pools, routes): frozen out of the
        # cyclic collector's sight, a full collection scans only what came after (perf/README.md,
        # "Collector pauses"). Frozen objects are still freed by reference counting.
        gc.freeze()
        yield deps


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
    config = config or settings.load(service.name, own=service.settings)
    logs.setup(service.name, config.log_level)
    telemetry.setup(service.name, config.otlp_endpoint, statements=True)

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
        middleware=[Middleware(Observe, access_log=config.access_log), *service.middleware],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # Starlette would answer `/api/products/` with a redirect built from the client's Host header
    # (`Host: evil.example` sent people to evil.example). Paths are exact: such a path is a 404.
    app.router.redirect_slashes = False
    return app
