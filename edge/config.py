"""The edge's configuration, read once at start through `kit.settings` (kit's settings and the edge's
own `EDGE_*` variables, with the typed `kit.settings.Env`).

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
from dataclasses import dataclass, replace

from edge.cors import CorsPolicy
from edge.limits import Limits
from edge.ratelimit import Policy
from edge.routes import RouteLimit, RouteTable
from kit import settings
from kit.settings import Env, Secret


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """What `load_config` read; the defaults of each variable are in this module's docstring."""

    host: str
    port: int
    jwt_secret: Secret
    jwt_issuer: str
    jwt_audience: str
    # Cluster name -> destination base URLs, in balancing order.
    clusters: Mapping[str, tuple[str, ...]]
    routes: RouteTable
    limits: Limits
    user_limit: Policy
    ip_limit: Policy
    redis_url: str | None
    cors: CorsPolicy
    trusted_proxies: tuple[str, ...]
    # Cluster name -> least_requests or round_robin.
    balance: Mapping[str, str]
    health_interval: float
    eject_after: int
    eject_seconds: float
    retries: int
    access_log: float
    docs: bool
    workers: int
    # 0: any free port (tests).
    admin_port: int
    connect_timeout: float
    response_timeout: float
    pool_max_connections: int
    shutdown_grace: float
    log_level: str
    # Where spans go over OTLP/HTTP ("": tracing off), as for the services (kit.settings).
    otlp_endpoint: str = ""
    health_timeout: float = 1.0
    # Below uvicorn's 5 s keep-alive, so an idle connection is dropped by us before the service drops it.
    pool_idle_timeout: float = 4.0


def _route_limits(env: Env, routes: RouteTable) -> dict[str, RouteLimit]:
    replaced = {}
    for limit in routes.limits:
        name = f"EDGE_RATE_LIMIT_{limit.name.upper()}"
        raw = env.text(name).strip()
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


def load_config(
    environment: Env | Mapping[str, str] | None = None, routes: RouteTable | None = None
) -> EdgeConfig:
    """The edge's configuration from `environment` (default: the process environment)."""
    env = environment if isinstance(environment, Env) else Env(environment)
    common = settings.load("edge", env)
    routes = routes or RouteTable()
    routes = routes.replace_limits(_route_limits(env, routes))
    clusters = {}
    for name in routes.clusters:
        variable = f"EDGE_CLUSTER_{name.upper()}"
        destinations = env.items(variable) if env.text(variable) else (env.service_url(name),)
        if not destinations:
            raise ValueError(f"{variable} names no destination")
        clusters[name] = tuple(url.rstrip("/") for url in destinations)
    limits = Limits()
    return EdgeConfig(
        host=common.host,
        port=common.http_port,
        jwt_secret=common.jwt_secret,
        jwt_issuer=common.jwt_issuer,
        jwt_audience=common.jwt_audience,
        clusters=clusters,
        routes=routes,
        user_limit=Policy("user", common.rate_limit_user_per_minute, 60),
        ip_limit=Policy("ip", common.rate_limit_ip_per_hour, 3600),
        redis_url=common.redis_url,
        cors=CorsPolicy(
            frozenset(env.items("EDGE_CORS_ORIGINS")),
            credentials=env.flag("EDGE_CORS_CREDENTIALS", True),
            max_age=env.integer("EDGE_CORS_MAX_AGE", 600),
        ),
        trusted_proxies=env.items("EDGE_TRUSTED_PROXIES"),
        balance={
            name: env.text(f"EDGE_BALANCE_{name.upper()}") or env.text("EDGE_BALANCE", "least_requests")
            for name in clusters
        },
        health_interval=env.number("EDGE_HEALTH_INTERVAL", 5.0),
        eject_after=env.integer("EDGE_EJECT_AFTER", 3),
        eject_seconds=env.number("EDGE_EJECT_SECONDS", 10.0),
        retries=env.integer("EDGE_RETRIES", 1),
        access_log=env.share("EDGE_ACCESS_LOG", 0.01),
        docs=env.flag("EDGE_DOCS", True),
        workers=common.workers,
        admin_port=env.integer("EDGE_ADMIN_PORT", 9010),
        connect_timeout=env.number("EDGE_CONNECT_TIMEOUT", 2.0),
        response_timeout=env.number("EDGE_RESPONSE_TIMEOUT", 30.0),
        pool_max_connections=env.integer("EDGE_POOL_MAX_CONNECTIONS", 256),
        shutdown_grace=env.number("EDGE_SHUTDOWN_GRACE", 5.0),
        limits=replace(
            limits,
            max_body=env.integer("EDGE_MAX_BODY_BYTES", limits.max_body),
            header_timeout=env.number("EDGE_HEADER_TIMEOUT", limits.header_timeout),
        ),
        log_level=common.log_level,
        otlp_endpoint=common.otlp_endpoint,
    )
