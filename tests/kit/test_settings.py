from __future__ import annotations

import dataclasses

import pytest

from kit import settings

pytestmark = pytest.mark.offline


def test_defaults_point_at_loopback_and_the_contract_ports() -> None:
    config = settings.load("inventory", {})
    assert (config.http_port, config.grpc_port) == (5006, 5106)
    assert config.database_url == "postgresql://postgres@127.0.0.1:5432/inventory_db"
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"


def test_sessions_go_straight_to_the_server_when_a_pooler_stands_in_front() -> None:
    alone = settings.load("order", {})
    assert alone.database_direct_url == alone.database_url == "postgresql://postgres@127.0.0.1:5432/order_db"
    pooled = settings.load(
        "order",
        {
            "POSTGRES_URL": "postgresql://postgres@pgbouncer:6432",
            "POSTGRES_DIRECT_URL": "postgresql://postgres@db:5432",
        },
    )
    assert pooled.database_url == "postgresql://postgres@pgbouncer:6432/order_db"
    assert pooled.database_direct_url == "postgresql://postgres@db:5432/order_db"
    own = settings.load(
        "order", {"ORDER_DATABASE_URL": "postgresql://p/o", "ORDER_DATABASE_DIRECT_URL": "postgresql://d/o"}
    )
    assert (own.database_url, own.database_direct_url) == ("postgresql://p/o", "postgresql://d/o")


def test_every_port_and_url_can_be_overridden() -> None:
    env = {"AUTH_PORT": "7001", "AUTH_DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://r/2"}
    config = settings.load("auth", env)
    assert (config.http_port, config.database_url, config.redis_url) == (
        7001,
        "postgresql://x/y",
        "redis://r/2",
    )
    assert settings.service_url("auth", env) == "http://127.0.0.1:7001"


def test_the_jwt_secret_never_shows_in_logs_or_reprs() -> None:
    config = settings.load("auth", {"JWT_SECRET": "s" * 40})
    assert "s" * 40 not in repr(config) and "s" * 40 not in str(config.jwt_secret)
    assert config.jwt_secret.reveal() == "s" * 40


def test_production_refuses_to_start_without_a_strong_secret() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET must be set"):
        settings.load("auth", {"SHOP_ENV": "production"})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        settings.load("auth", {"JWT_SECRET": "short"})


def test_a_malformed_port_is_reported_by_name() -> None:
    with pytest.raises(ValueError, match="AUTH_PORT"):
        settings.load("auth", {"AUTH_PORT": "http"})


@dataclasses.dataclass(frozen=True, slots=True)
class Knobs(settings.OwnSettings):
    every: float
    origins: tuple[str, ...]

    @classmethod
    def read(cls, env: settings.Env) -> Knobs:
        return cls(env.number("ORDER_EVERY", 10, positive=True), env.items("ORDER_ORIGINS"))


def test_a_service_reads_its_own_typed_settings_with_kits() -> None:
    config = settings.load("order", {"ORDER_EVERY": "0.5", "ORDER_ORIGINS": "a, b,"}, own=Knobs)
    assert Knobs.of(config) == Knobs(0.5, ("a", "b"))
    assert Knobs.of(settings.load("order", {"ORDER_EVERY": ""}, own=Knobs)).every == 10  # empty: unset
    with pytest.raises(ValueError, match="ORDER_EVERY must be positive"):
        settings.load("order", {"ORDER_EVERY": "0"}, own=Knobs)
    with pytest.raises(ValueError, match="ORDER_EVERY must be a number, got 'soon'"):
        settings.load("order", {"ORDER_EVERY": "soon"}, own=Knobs)
    with pytest.raises(TypeError, match="hold no Knobs"):
        Knobs.of(settings.load("order", {}))
