"""The edge's configuration, read once at start from `kit.settings` (its `EDGE_*` variables).

EDGE_HOST, EDGE_PORT            where to listen (kit.settings; port 5010)
EDGE_WORKERS                    worker processes sharing the port with SO_REUSEPORT (1)
EDGE_CLUSTER_<NAME>             comma-separated destinations of a cluster, e.g.
                                EDGE_CLUSTER_AUTH=http://127.0.0.1:5001,http://127.0.0.1:6001
                                (default: the one URL kit.settings.service_url gives)
EDGE_CONNECT_TIMEOUT            seconds to open an upstream connection (2)
EDGE_RESPONSE_TIMEOUT           seconds an upstream may stay silent while we wait on it (30)
EDGE_POOL_MAX_CONNECTIONS       open connections per destination (256)
EDGE_MAX_BODY_BYTES             request body limit (10 MiB)
EDGE_SHUTDOWN_GRACE             seconds in-flight requests get on SIGTERM (5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from edge.protocol import Limits
from edge.routes import RouteTable
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
    workers: int = 1
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


def load_config(settings: Settings, routes: RouteTable | None = None) -> EdgeConfig:
    routes = routes or RouteTable()
    env = settings.extra
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
    )
    return replace(
        base,
        workers=_env(env, "EDGE_WORKERS", base.workers),
        connect_timeout=_env(env, "EDGE_CONNECT_TIMEOUT", base.connect_timeout),
        response_timeout=_env(env, "EDGE_RESPONSE_TIMEOUT", base.response_timeout),
        pool_max_connections=_env(env, "EDGE_POOL_MAX_CONNECTIONS", base.pool_max_connections),
        shutdown_grace=_env(env, "EDGE_SHUTDOWN_GRACE", base.shutdown_grace),
        limits=replace(base.limits, max_body=_env(env, "EDGE_MAX_BODY_BYTES", base.limits.max_body)),
    )
