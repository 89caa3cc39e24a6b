from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shop.map import SERVICES
from tests.deploy import wiring

pytestmark = pytest.mark.offline

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose must be installed in CI (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return found


def test_compose_file_is_valid() -> None:
    result = subprocess.run([_compose(), "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@cache
def _config() -> dict[str, Any]:
    rendered = subprocess.run([_compose(), "config"], cwd=ROOT, capture_output=True, text=True, check=True)
    config: dict[str, Any] = yaml.safe_load(rendered.stdout)
    return config


def test_every_process_of_the_procfile_runs_in_compose_with_a_healthcheck() -> None:
    config = _config()
    procfile = [line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    for name, command in procfile:
        service = config["services"][name]
        assert service["command"] == command.split(), name
        assert service["healthcheck"]["test"], name
    for name, service in config["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)


def test_every_service_waits_for_the_one_shot_migration_and_seed() -> None:
    services = _config()["services"]
    assert services["migrate"]["command"][-1] == "python -m shop.migrate && python -m shop.seed"
    assert services["migrate"]["restart"] == "no"
    for name, service in services.items():
        if service.get("command", [""])[-1].startswith("svc_"):
            assert "migrate" in service["depends_on"], name


def test_images_are_pinned_and_every_container_is_limited() -> None:
    for name, service in _config()["services"].items():
        if "build" not in service:
            # An exact release (PostgreSQL numbers them major.minor, edoburu/pgbouncer adds its own build
            # as `-p0`), never a floating `7` or `latest`.
            assert re.fullmatch(r"[a-z0-9/-]+:v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", service["image"]), name
        assert service["cpus"] and service["mem_limit"], name


def test_only_the_edge_and_the_dev_sinks_pages_are_published() -> None:
    for name, service in _config()["services"].items():
        published = [str(p["published"]) for p in service.get("ports", [])]
        if name == "edge":
            assert published == ["5010"]
        elif not service.get("command", [""])[-1].startswith("devsinks."):
            assert published == [], name


def test_the_edge_balances_two_replicas_of_the_catalog() -> None:
    services = _config()["services"]
    destinations = services["edge"]["environment"]["EDGE_CLUSTER_PRODUCT"].split(",")
    hosts = [urlsplit(url).hostname for url in destinations]
    assert len(hosts) == 2
    for host in hosts:
        assert services[host]["command"] == ["python", "-m", "svc_product"]
        assert services["edge"]["depends_on"][host] == {"condition": "service_healthy"}


def _mounted(service: dict[str, Any], target: str) -> Path:
    """The host file `service` mounts at `target` (docker-compose 1 writes mounts short, 2 long)."""
    for volume in service["volumes"]:
        if isinstance(volume, str):
            source, mounted = volume.split(":")[:2]
        else:
            source, mounted = volume["source"], volume["target"]
        if mounted == target:
            return Path(source)
    raise AssertionError(f"nothing mounted at {target}")


def test_every_pool_goes_through_pgbouncer_and_every_session_straight_to_postgres() -> None:
    services = _config()["services"]
    bouncer = wiring.bouncer(_mounted(services["pgbouncer"], "/etc/pgbouncer/pgbouncer.ini").read_text())
    assert bouncer.pool_mode == "transaction"
    assert bouncer.server == ("postgres", 5432)
    assert services["pgbouncer"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    served = [(name, s) for name, s in services.items() if s.get("command", [""])[-1].startswith("svc_")]
    assert {s["command"][-1] for _, s in served} == {f"svc_{n}" for n, s in SERVICES.items() if s.database}
    for name, service in served:
        connections = wiring.connections(service["command"][-1].removeprefix("svc_"), service["environment"])
        assert connections == wiring.Connections(("pgbouncer", bouncer.port), bouncer.server, 0), name
        assert service["depends_on"]["pgbouncer"] == {"condition": "service_healthy"}, name
