"""Typed settings, read once from the environment at start.

Every port and URL of the contract (section 1) can be changed by an environment variable; the defaults
point at loopback. A service asks for its own view with `load(service)`; nothing else in the code base
reads `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shop.map import SERVICES

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-in-production-0123456789"


class Secret(str):
    """A string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "**********"


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def _env_share(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        share = float(raw)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"environment variable {name} must be a number from 0 to 1, got {raw!r}")
    return share


def service_url(name: str, env: Mapping[str, str] | None = None) -> str:
    """The base HTTP URL of another process, e.g. `http://127.0.0.1:5001` for auth."""
    env = os.environ if env is None else env
    spec = SERVICES[name]
    port = _env_int(env, f"{name.upper()}_PORT", spec.http_port)
    return env.get(f"{name.upper()}_URL") or f"http://127.0.0.1:{port}"


def database_url(database: str, env: Mapping[str, str] | None = None, *, direct: bool = False) -> str:
    """The URL of one of the contract's databases, honouring `<SERVICE>_DATABASE_URL` and `POSTGRES_URL`.

    `direct` asks for a server connection of its own, bypassing a transaction pooler (PgBouncer) for
    what needs a session: LISTEN, the migrations' advisory lock. `<SERVICE>_DATABASE_DIRECT_URL` or
    `POSTGRES_DIRECT_URL` name it; without them it is the same URL.
    """
    env = os.environ if env is None else env
    suffix = "_DIRECT_URL" if direct else "_URL"
    for spec in SERVICES.values():
        if spec.database == database and (url := env.get(f"{spec.name.upper()}_DATABASE{suffix}")):
            return url
    if direct and not env.get("POSTGRES_DIRECT_URL"):
        return database_url(database, env)
    base = env.get(f"POSTGRES{suffix}", POSTGRES_URL)
    return f"{base.rstrip('/')}/{database}"


@dataclass(frozen=True, slots=True)
class Settings:
    """One process's configuration. Build it with `load`."""

    service: str
    host: str
    http_port: int
    grpc_port: int | None
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
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_pool_idle_seconds: float = 30.0
    db_statement_cache_size: int = 100
    # Share of requests written to the access log (kit.metrics.Observe): 0 = none, 1 = every one.
    access_log: float = 0.01
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_dev(self) -> bool:
        return self.environment in {"dev", "test"}

    def direct(self) -> Settings:
        """These settings with every connection straight to the server: for the one-off tools
        (migrate, seed) that run before a pooler, and need sessions anyway."""
        return dataclasses.replace(self, database_url=self.database_direct_url)


def load(service: str, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings of `service` (a key of SERVICES) from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    spec = SERVICES[service]
    prefix = service.upper()
    grpc_port = _env_int(env, f"{prefix}_GRPC_PORT", spec.grpc_port) if spec.grpc_port else None
    environment = env.get("SHOP_ENV", "dev")
    secret = env.get("JWT_SECRET", "")
    if not secret:
        if environment not in {"dev", "test"}:
            raise ValueError("JWT_SECRET must be set outside dev and test")
        secret = DEV_JWT_SECRET
    if len(secret.encode()) < 32:
        raise ValueError("JWT_SECRET must be at least 32 bytes for HS256 (RFC 7518, section 3.2)")
    return Settings(
        service=service,
        host=env.get(f"{prefix}_HOST", env.get("BIND_HOST", "127.0.0.1")),
        http_port=_env_int(env, f"{prefix}_PORT", spec.http_port),
        grpc_port=grpc_port,
        database_url=database_url(spec.database, env) if spec.database else None,
        database_direct_url=database_url(spec.database, env, direct=True) if spec.database else None,
        redis_url=env.get("REDIS_URL", REDIS_URL),
        amqp_url=env.get("AMQP_URL", AMQP_URL),
        jwt_secret=Secret(secret),
        jwt_issuer=env.get("JWT_ISSUER", "ecommerce-auth"),
        jwt_audience=env.get("JWT_AUDIENCE", "ecommerce-services"),
        access_token_minutes=_env_int(env, "JWT_ACCESS_MINUTES", 60),
        refresh_token_days=_env_int(env, "JWT_REFRESH_DAYS", 30),
        smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
        smtp_port=_env_int(env, "SMTP_PORT", 1025),
        mail_from=env.get("MAIL_FROM", "Shop <no-reply@shop.local>"),
        public_url=env.get("PUBLIC_URL", service_url("edge", env)),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        rate_limit_user_per_minute=_env_int(env, "RATE_LIMIT_USER_PER_MINUTE", 100),
        rate_limit_ip_per_hour=_env_int(env, "RATE_LIMIT_IP_PER_HOUR", 1000),
        environment=environment,
        # PostgreSQL allows 100 connections by default, shared by every process of the stack: a pool
        # keeps one, grows to DB_POOL_MAX under load and gives back what stayed idle DB_POOL_IDLE_SECONDS
        # (README, "Connections"). Through a PgBouncer older than 1.21, DB_STATEMENT_CACHE_SIZE=0.
        db_pool_min=_env_int(env, "DB_POOL_MIN", 1),
        db_pool_max=_env_int(env, "DB_POOL_MAX", 10),
        db_pool_idle_seconds=_env_int(env, "DB_POOL_IDLE_SECONDS", 30),
        db_statement_cache_size=_env_int(env, "DB_STATEMENT_CACHE_SIZE", 100),
        access_log=_env_share(env, "ACCESS_LOG", 0.01),
        extra={k: v for k, v in env.items() if k.startswith(f"{prefix}_")},
    )
