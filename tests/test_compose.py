from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


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


def test_every_process_of_the_procfile_runs_in_compose_with_a_healthcheck() -> None:
    config = yaml.safe_load(
        subprocess.run([_compose(), "config"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    )
    procfile = [line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    for name, command in procfile:
        service = config["services"][name]
        assert service["command"] == command.split(), name
        assert service["healthcheck"]["test"], name
    for name, service in config["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
