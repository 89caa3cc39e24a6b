"""Typed settings, read once from the environment at start: the one place that reads it.

Every port and URL of the contract (section 1) can be changed by an environment variable; the defaults
point at loopback. A process asks for its view with `load(service)`: kit's `Settings`, and with
`own=` the service's own (an `OwnSettings` dataclass, e.g. `svc_order.config.OrderConfig`, read from
its variables through the same typed `Env`). No service, no other kit module and not the edge reads
`os.environ`; only the launchers (kit.supervise, shop.stack) pass it on to the processes they start.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Self, TypeVar

from shop.map import SERVICES

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production-0123456789"

T = TypeVar("T")


class Secret(str):
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "**********"


class Env:
    """The environment, read a typed variable at a time. An empty variable counts as unset; a malformed
    one is a ValueError naming it, at start rather than deep inside a request. `asked` holds every
    name read (tests/deploy checks that each of kit's comes from the ConfigMap or a Secret)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = os.environ if values is None else values
        self.asked: set[str] = set()

    def _raw(self, name: str) -> str:
        self.asked.add(name)
        return self._values.get(name, "")

    def _invalid(self, name: str, raw: str, kind: str) -> ValueError:
        return ValueError(f"environment variable {name} must be {kind}, got {raw!r}")

    def text(self, name: str, default: str = "") -> str:
        return self._raw(name) or default

    def secret(self, name: str, default: str = "") -> Secret:
        return Secret(self.text(name, default))

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list."""
        return tuple(item.strip() for item in self._raw(name).split(",") if item.strip())

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], kind: str) -> T:
        raw = self._raw(name)
        try:
            return parse(raw) if raw else default
        except (ValueError, ArithmeticError):  # decimal's InvalidOperation is an ArithmeticError
            raise self._invalid(name, raw, kind) from None

    def integer(self, name: str, default: int) -> int:
        return self._parsed(name, default, int, "an integer")

    def number(self, name: str, default: float, *, positive: bool = False) -> float:
        value = self._parsed(name, default, float, "a number")
        if positive and value <= 0:
            raise self._invalid(name, self._raw(name), "positive")
        return value

    def decimal(self, name: str, default: Decimal) -> Decimal:
        return self._parsed(name, default, Decimal, "a number")

    def share(self, name: str, default: float) -> float:
        """A number from 0 to 1."""
        raw = self._raw(name)
        try:
            share = float(raw) if raw else default
        except ValueError:
            share = -1.0
        if not 0.0 <= share <= 1.0:
            raise self._invalid(name, raw, "a number from 0 to 1")
        return share

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name).strip().lower()
        if not raw:
            return default
        if raw not in {"true", "false", "1", "0", "yes", "no"}:
            raise self._invalid(name, raw, "true or false")
        return raw in {"true", "1", "yes"}

    @property
    def environment(self) -> str:
        return self.text("SHOP_ENV", "dev")

    @property
    def is_dev(self) -> bool:
        """Dev and test: the shop runs with the dev secrets and sinks of the repository."""
        return self.environment in {"dev", "test"}

    def service_url(self, name: str) -> str:
        """The base HTTP URL of a process, e.g. `http://127.0.0.1:5001` for auth."""
        prefix = name.upper()
        port = self.integer(f"{prefix}_PORT", SERVICES[name].http_port)
        return self.text(f"{prefix}_URL") or f"http://127.0.0.1:{port}"

    def grpc_target(self, name: str) -> str:
        """`host:port` of a service's gRPC server: `<SERVICE>_GRPC_URL`, else loopback and its gRPC port."""
        prefix = name.upper()
        port = self.integer(f"{prefix}_GRPC_PORT", SERVICES[name].grpc_port or 0)
        return self.text(f"{prefix}_GRPC_URL") or f"127.0.0.1:{port}"

    def database_url(self, database: str, *, direct: bool = False) -> str:
        """The URL of one of the contract's databases, honouring `<SERVICE>_DATABASE_URL` and
        `POSTGRES_URL`.

        `direct` asks for a server connection of its own, bypassing a transaction pooler (PgBouncer) for
        what needs a session: LISTEN, the migrations' advisory lock. `<SERVICE>_DATABASE_DIRECT_URL` or
        `POSTGRES_DIRECT_URL` name it; without them it is the same URL.
        """
        suffix = "_DIRECT_URL" if direct else "_URL"
        for spec in SERVICES.values():
            if spec.database == database and (url := self.text(f"{spec.name.upper()}_DATABASE{suffix}")):
                return url
        if direct and not self.text("POSTGRES_DIRECT_URL"):
            return self.database_url(database)
        base = self.text(f"POSTGRES{suffix}", POSTGRES_URL)
        return f"{base.rstrip('/')}/{database}"

    @property
    def public_url(self) -> str:
        """Where clients reach the shop: the base of links in mails and of the gateways' callbacks."""
        return self.text("PUBLIC_URL") or self.service_url("edge")


def service_url(name: str, env: Mapping[str, str] | None = None) -> str:
    """The base HTTP URL of a process in `env` (default: the process environment)."""
    return Env(env).service_url(name)


def database_url(database: str, env: Mapping[str, str] | None = None, *, direct: bool = False) -> str:
    """The URL of one of the contract's databases in `env` (default: the process environment)."""
    return Env(env).database_url(database, direct=direct)


class OwnSettings:
    """Base of a service's own settings (`kit.app.Service.settings`): a frozen dataclass of typed fields
    that `read` takes from its variables, once at start with kit's, and `of` finds again."""

    __slots__ = ()

    @classmethod
    def read(cls, env: Env) -> Self:
        raise NotImplementedError

    @classmethod
    def of(cls, config: Settings) -> Self:
        """The service's own settings held by `config` (loaded with `own=cls`)."""
        own = config.own
        if not isinstance(own, cls):
            raise TypeError(f"the settings of {config.service} hold no {cls.__name__}: load them with own=")
        return own


@dataclass(frozen=True, slots=True)
class Settings:
    """One process's configuration. Build it with `load`."""

    service: str
    host: str
    http_port: int
    grpc_port: int | None
    url: str  # where the others reach this process
    database_url: str | None
    database_direct_url: str | None
    redis_url: str
    amqp_url: str
    jwt_secret: Secret
    jwt_issuer: str
    jwt_audience: str
    access_token_minutes: int
    refresh_token_days: int
    smtp_host: str
    smtp_port: int
    mail_from: str
    public_url: str
    log_level: str
    rate_limit_user_per_minute: int
    rate_limit_ip_per_hour: int
    environment: str
    # Worker processes of a service (granian's, each with its own gRPC server) or of the edge.
    workers: int = 1
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_pool_idle_seconds: float = 30.0
    db_statement_cache_size: int = 100
    # Share of requests written to the access log (kit.metrics.Observe): 0 = none, 1 = every one.
    access_log: float = 0.01
    # Where spans are exported (OTLP/HTTP); empty: tracing is off (kit.telemetry).
    otlp_endpoint: str = ""
    # prometheus_client's folder for the figures of several workers (kit.serve.share_metrics).
    metrics_dir: str = ""
    own: OwnSettings | None = None

    @property
    def is_dev(self) -> bool:
        return self.environment in {"dev", "test"}

    def direct(self) -> Settings:
        """These settings with every connection straight to the server: for the one-off tools
        (migrate, seed) that run before a pooler, and need sessions anyway."""
        return dataclasses.replace(self, database_url=self.database_direct_url)


def load(
    service: str, env: Env | Mapping[str, str] | None = None, *, own: type[OwnSettings] | None = None
) -> Settings:
    """Read the settings of `service` (a key of `shop.map.SERVICES`) from `env` (default: the process
    environment), with the service's `own` settings when it has some."""
    env = env if isinstance(env, Env) else Env(env)
    spec = SERVICES[service]
    prefix = service.upper()
    secret = env.text("JWT_SECRET")
    if not secret:
        if not env.is_dev:
            raise ValueError("JWT_SECRET must be set outside dev and test")
        secret = DEV_JWT_SECRET
    if len(secret.encode()) < 32:
        raise ValueError("JWT_SECRET must be at least 32 bytes for HS256 (RFC 7518, section 3.2)")
    return Settings(
        service=service,
        host=env.text(f"{prefix}_HOST") or env.text("BIND_HOST", "127.0.0.1"),
        http_port=env.integer(f"{prefix}_PORT", spec.http_port),
        grpc_port=env.integer(f"{prefix}_GRPC_PORT", spec.grpc_port) if spec.grpc_port else None,
        url=env.service_url(service),
        database_url=env.database_url(spec.database) if spec.database else None,
        database_direct_url=env.database_url(spec.database, direct=True) if spec.database else None,
        redis_url=env.text("REDIS_URL", REDIS_URL),
        amqp_url=env.text("AMQP_URL", AMQP_URL),
        jwt_secret=Secret(secret),
        jwt_issuer=env.text("JWT_ISSUER", "ecommerce-auth"),
        jwt_audience=env.text("JWT_AUDIENCE", "ecommerce-services"),
        access_token_minutes=env.integer("JWT_ACCESS_MINUTES", 60),
        refresh_token_days=env.integer("JWT_REFRESH_DAYS", 30),
        smtp_host=env.text("SMTP_HOST", "127.0.0.1"),
        smtp_port=env.integer("SMTP_PORT", 1025),
        mail_from=env.text("MAIL_FROM", "Shop <no-reply@shop.local>"),
        public_url=env.public_url,
        log_level=env.text("LOG_LEVEL", "INFO").upper(),
        rate_limit_user_per_minute=env.integer("RATE_LIMIT_USER_PER_MINUTE", 100),
        rate_limit_ip_per_hour=env.integer("RATE_LIMIT_IP_PER_HOUR", 1000),
        environment=env.environment,
        workers=env.integer(f"{prefix}_WORKERS", 1),
        # PostgreSQL allows 100 connections by default, shared by every process of the stack: a pool
        # keeps one, grows to DB_POOL_MAX under load and gives back what stayed idle DB_POOL_IDLE_SECONDS
        # (README, "Connections"). Through a PgBouncer older than 1.21, DB_STATEMENT_CACHE_SIZE=0.
        db_pool_min=env.integer("DB_POOL_MIN", 1),
        db_pool_max=env.integer("DB_POOL_MAX", 10),
        db_pool_idle_seconds=env.number("DB_POOL_IDLE_SECONDS", 30),
        db_statement_cache_size=env.integer("DB_STATEMENT_CACHE_SIZE", 100),
        access_log=env.share("ACCESS_LOG", 0.01),
        # The OpenTelemetry SDK reads its other OTEL_* variables itself (sampler, headers).
        otlp_endpoint=env.text("OTEL_EXPORTER_OTLP_ENDPOINT"),
        metrics_dir=env.text("PROMETHEUS_MULTIPROC_DIR"),
        own=own.read(env) if own is not None else None,
    )
