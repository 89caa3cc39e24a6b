"""The edge's configuration, read once at start from `kit.settings` (its `EDGE_*` variables).

EDGE_HOST, EDGE_PORT            where to listen (kit.settings; port 5010)
EDGE_ADMIN_PORT                 `/metrics` and the health endpoints, off the public port (9010; worker
                                i of several listens on 9010 + i; edge/admin.py)
EDGE_WORKERS                    worker processes sharing the port with SO_REUSEPORT (1)
EDGE_CLUSTER_<NAME>             comma-separated destinations of a cluster, e.g.
                                EDGE_CLUSTER_AUTH=http://127.0.0.1:5001,http://127.0.0.1:6001
                                (default: the one URL kit.settings.service_url gives)
EDGE_CONNECT_TIMEOUT            seconds to open an upstream connection (2)
EDGE_RESPONSE_TIMEOUT           seconds an upstream may stay silent while we wait on it (30)
EDGE_POOL_MAX_CONNECTIONS       open connections per destination (256)
EDGE_MAX_BODY_BYTES             request body limit (10 MiB)
EDGE_HEADER_TIMEOUT             seconds a client has to send a whole request head (10), else 408
EDGE_SHUTDOWN_GRACE             seconds in-flight requests get on SIGTERM (5)
RATE_LIMIT_USER_PER_MINUTE      requests per minute per user with a valid token (100, kit.settings)
RATE_LIMIT_IP_PER_HOUR          requests per hour per client IP without one (1000, kit.settings)
EDGE_RATE_LIMIT_<NAME>          a route limit of edge.routes replaced, `<count>/<seconds>` or `off`,
                                e.g. EDGE_RATE_LIMIT_LOGIN=20/60
REDIS_URL                       where the limits are shared (kit.settings); unreachable = per-process
EDGE_TRUSTED_PROXIES            addresses/networks whose X-Forwarded-For names the client ("")
EDGE_CORS_ORIGINS               allowed browser origins, comma-separated, or * ("" = no CORS)
EDGE_CORS_CREDENTIALS           whether browsers may send credentials cross-origin (true)
EDGE_CORS_MAX_AGE               seconds a browser may cache a preflight answer (600)
EDGE_BALANCE                    least_requests or round_robin (least_requests); per cluster:
                                EDGE_BALANCE_<NAME>
EDGE_HEALTH_INTERVAL            seconds between readiness checks of each destination (5; 0 = none)
EDGE_EJECT_AFTER                failures in a row that eject a destination (3)
EDGE_EJECT_SECONDS              how long a first ejection lasts (10; doubles while it keeps failing)
EDGE_RETRIES                    extra attempts for an idempotent request that failed before any
                                answer (1)
EDGE_ACCESS_LOG                 share of requests written to the JSON access log, 0..1 (0.01; 0 = off)
EDGE_DOCS                       serve the API's document at /openapi.json and its docs page at /docs,
                                read from the services' /openapi.json (true; edge.docs)
OTEL_EXPORTER_OTLP_ENDPOINT     where the edge's spans go over OTLP/HTTP, as the services' (unset: no
                                tracing; edge.spans, kit.telemetry)
OTEL_TRACES_SAMPLER(_ARG)       which traces are kept, as in the services (read by OpenTelemetry's SDK)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from edge.cors import CorsPolicy
from edge.protocol import Limits
from edge.ratelimit import Policy
from edge.routes import RouteLimit, RouteTable
from kit.settings import Secret, Settings, service_url


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    host: str
    port: int
    jwt_secret: Secret
    jwt_issuer: str
    jwt_audience: str
    # Cluster name -> destination base URLs, in balancing order.
    clusters: Mapping[str, tuple[str, ...]]
    routes: RouteTable = field(default_factory=RouteTable)
    limits: Limits = field(default_factory=Limits)
    user_limit: Policy = field(default_factory=lambda: Policy("user", 100, 60))
    ip_limit: Policy = field(default_factory=lambda: Policy("ip", 1000, 3600))
    redis_url: str | None = None
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    trusted_proxies: tuple[str, ...] = ()
    # Cluster name -> least_requests or round_robin.
    balance: Mapping[str, str] = field(default_factory=dict)
    health_interval: float = 5.0
    health_timeout: float = 1.0
    eject_after: int = 3
    eject_seconds: float = 10.0
    retries: int = 1
    access_log: float = 0.0
    docs: bool = True
    workers: int = 1
    # 0: any free port (tests); `python -m edge` defaults to 9010.
    admin_port: int = 0
    connect_timeout: float = 2.0
    response_timeout: float = 30.0
    pool_max_connections: int = 256
    # Below uvicorn's 5 s keep-alive, so an idle connection is dropped by us before the service drops it.
    pool_idle_timeout: float = 4.0
    shutdown_grace: float = 5.0


Number = TypeVar("Number", int, float)


def _env(env: Mapping[str, str], name: str, default: Number) -> Number:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return type(default)(raw)
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"environment variable {name} must be a {kind}, got {raw!r}") from None


def _route_limits(env: Mapping[str, str], routes: RouteTable) -> dict[str, RouteLimit]:
    replaced = {}
    for limit in routes.limits:
        name = f"EDGE_RATE_LIMIT_{limit.name.upper()}"
        raw = env.get(name, "").strip()
        if not raw:
            continue
        if raw == "off":
            replaced[limit.name] = RouteLimit(limit.name, 0, limit.seconds)
            continue
        count, _, seconds = raw.partition("/")
        try:
            replaced[limit.name] = RouteLimit(limit.name, int(count), float(seconds))
        except ValueError:
            raise ValueError(
                f"environment variable {name} must be <count>/<seconds> or off, got {raw!r}"
            ) from None
    return replaced


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"environment variable {name} must be true or false, got {raw!r}")
    return raw in {"true", "1", "yes"}


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def load_config(settings: Settings, routes: RouteTable | None = None) -> EdgeConfig:
    routes = routes or RouteTable()
    env = settings.extra
    routes = routes.replace_limits(_route_limits(env, routes))
    clusters = {}
    for name in routes.clusters:
        raw = env.get(f"EDGE_CLUSTER_{name.upper()}") or service_url(name)
        destinations = tuple(url.strip().rstrip("/") for url in raw.split(",") if url.strip())
        if not destinations:
            raise ValueError(f"EDGE_CLUSTER_{name.upper()} names no destination")
        clusters[name] = destinations
    base = EdgeConfig(
        host=settings.host,
        port=settings.http_port,
        jwt_secret=settings.jwt_secret,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
        clusters=clusters,
        routes=routes,
        user_limit=Policy("user", settings.rate_limit_user_per_minute, 60),
        ip_limit=Policy("ip", settings.rate_limit_ip_per_hour, 3600),
        redis_url=settings.redis_url,
        cors=CorsPolicy(
            frozenset(_list(env, "EDGE_CORS_ORIGINS")),
            credentials=_flag(env, "EDGE_CORS_CREDENTIALS", True),
            max_age=_env(env, "EDGE_CORS_MAX_AGE", 600),
        ),
        trusted_proxies=_list(env, "EDGE_TRUSTED_PROXIES"),
        balance={
            name: env.get(f"EDGE_BALANCE_{name.upper()}") or env.get("EDGE_BALANCE") or "least_requests"
            for name in clusters
        },
    )
    return replace(
        base,
        health_interval=_env(env, "EDGE_HEALTH_INTERVAL", base.health_interval),
        eject_after=_env(env, "EDGE_EJECT_AFTER", base.eject_after),
        eject_seconds=_env(env, "EDGE_EJECT_SECONDS", base.eject_seconds),
        retries=_env(env, "EDGE_RETRIES", base.retries),
        access_log=_env(env, "EDGE_ACCESS_LOG", 0.01),
        docs=_flag(env, "EDGE_DOCS", base.docs),
        workers=_env(env, "EDGE_WORKERS", base.workers),
        admin_port=_env(env, "EDGE_ADMIN_PORT", 9010),
        connect_timeout=_env(env, "EDGE_CONNECT_TIMEOUT", base.connect_timeout),
        response_timeout=_env(env, "EDGE_RESPONSE_TIMEOUT", base.response_timeout),
        pool_max_connections=_env(env, "EDGE_POOL_MAX_CONNECTIONS", base.pool_max_connections),
        shutdown_grace=_env(env, "EDGE_SHUTDOWN_GRACE", base.shutdown_grace),
        limits=replace(
            base.limits,
            max_body=_env(env, "EDGE_MAX_BODY_BYTES", base.limits.max_body),
            header_timeout=_env(env, "EDGE_HEADER_TIMEOUT", base.limits.header_timeout),
        ),
    )
