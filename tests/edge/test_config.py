"""The edge's configuration, read from the environment through kit.settings."""

from __future__ import annotations

import pytest

from edge.config import load_config
from edge.server import Edge

pytestmark = pytest.mark.offline


def test_reads_cluster_destinations_and_tunables_from_the_environment() -> None:
    config = load_config(
        {
            "EDGE_CLUSTER_AUTH": "http://127.0.0.1:5001/, http://127.0.0.1:6001",
            "EDGE_WORKERS": "4",
            "EDGE_CONNECT_TIMEOUT": "0.25",
            "EDGE_RESPONSE_TIMEOUT": "12",
            "EDGE_MAX_BODY_BYTES": "2048",
        }
    )
    assert config.clusters["auth"] == ("http://127.0.0.1:5001", "http://127.0.0.1:6001")
    assert config.workers == 4
    assert config.connect_timeout == 0.25
    assert config.response_timeout == 12.0
    assert config.limits.max_body == 2048
    assert config.port == 5010


def test_defaults_each_cluster_to_its_service_url() -> None:
    config = load_config({})
    assert set(config.clusters) == {
        "auth",
        "user",
        "order",
        "product",
        "payment",
        "inventory",
        "discount",
        "notify",
    }
    assert config.clusters["order"] == ("http://127.0.0.1:5003",)


def test_refuses_a_malformed_number() -> None:
    with pytest.raises(ValueError, match="EDGE_WORKERS"):
        load_config({"EDGE_WORKERS": "many"})


def test_refuses_a_destination_that_is_not_plain_http() -> None:
    config = load_config({"EDGE_CLUSTER_USER": "https://127.0.0.1:5002"})
    with pytest.raises(ValueError, match="http://"):
        Edge(config)


def test_reads_limits_cors_balancing_and_health_from_the_environment() -> None:
    config = load_config(
        {
            "RATE_LIMIT_USER_PER_MINUTE": "7",
            "RATE_LIMIT_IP_PER_HOUR": "70",
            "EDGE_RATE_LIMIT_LOGIN": "3/30",
            "EDGE_RATE_LIMIT_MAIL": "off",
            "EDGE_CORS_ORIGINS": "https://shop.example, http://localhost:3000",
            "EDGE_TRUSTED_PROXIES": "10.0.0.0/8",
            "EDGE_BALANCE": "round_robin",
            "EDGE_BALANCE_AUTH": "least_requests",
            "EDGE_HEALTH_INTERVAL": "0",
            "EDGE_HEADER_TIMEOUT": "4",
        }
    )
    assert (config.user_limit.limit, config.user_limit.period) == (7, 60)
    assert (config.ip_limit.limit, config.ip_limit.period) == (70, 3600)
    login = config.routes.match("POST", "/api/auth/login")
    assert login is not None and login.limit is not None
    assert (login.limit.count, login.limit.seconds) == (3, 30.0)
    register = config.routes.match("POST", "/api/auth/register")
    assert register is not None and register.limit is None
    assert config.cors.origins == {"https://shop.example", "http://localhost:3000"}
    assert config.trusted_proxies == ("10.0.0.0/8",)
    assert config.balance["product"] == "round_robin" and config.balance["auth"] == "least_requests"
    assert config.health_interval == 0
    assert config.limits.header_timeout == 4


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EDGE_RATE_LIMIT_LOGIN", "lots", "EDGE_RATE_LIMIT_LOGIN"),
        ("EDGE_CORS_CREDENTIALS", "maybe", "EDGE_CORS_CREDENTIALS"),
        ("EDGE_CORS_ORIGINS", "*", "credentials"),
        ("EDGE_CORS_ORIGINS", "shop.example", "scheme"),
    ],
)
def test_refuses_a_malformed_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config({name: value})


def test_refuses_an_unknown_balancing_policy() -> None:
    config = load_config({"EDGE_BALANCE": "random"})
    with pytest.raises(ValueError, match="least_requests"):
        Edge(config)
