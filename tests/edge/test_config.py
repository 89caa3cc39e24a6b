"""The edge's configuration, read from the environment through kit.settings."""

from __future__ import annotations

import pytest

from edge.config import load_config
from edge.server import Edge
from kit import settings


def test_reads_cluster_destinations_and_tunables_from_the_environment() -> None:
    config = load_config(
        settings.load(
            "edge",
            {
                "EDGE_CLUSTER_AUTH": "http://127.0.0.1:5001/, http://127.0.0.1:6001",
                "EDGE_WORKERS": "4",
                "EDGE_CONNECT_TIMEOUT": "0.25",
                "EDGE_RESPONSE_TIMEOUT": "12",
                "EDGE_MAX_BODY_BYTES": "2048",
            },
        )
    )
    assert config.clusters["auth"] == ("http://127.0.0.1:5001", "http://127.0.0.1:6001")
    assert config.workers == 4
    assert config.connect_timeout == 0.25
    assert config.response_timeout == 12.0
    assert config.limits.max_body == 2048
    assert config.port == 5010


def test_defaults_each_cluster_to_its_service_url() -> None:
    config = load_config(settings.load("edge", {}))
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
    assert config.clusters["order"] == (settings.service_url("order"),)


def test_refuses_a_malformed_number() -> None:
    with pytest.raises(ValueError, match="EDGE_WORKERS"):
        load_config(settings.load("edge", {"EDGE_WORKERS": "many"}))


def test_refuses_a_destination_that_is_not_plain_http() -> None:
    config = load_config(settings.load("edge", {"EDGE_CLUSTER_USER": "https://127.0.0.1:5002"}))
    with pytest.raises(ValueError, match="http://"):
        Edge(config)
