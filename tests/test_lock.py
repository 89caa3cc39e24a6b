"""requirements/ is the lock of pyproject.toml: every dependency pinned with hashes, the runtime set
free of dev tools, one version of each package across the files (`make lock` writes them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.offline

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKS = {"runtime": "runtime.txt", "sinks": "sinks.txt", "dev": "dev.txt", "uv": "uv.txt"}
_PIN = re.compile(
    r"^([A-Za-z0-9._-]+)==([^\s;]+)([^\\\n]*)\\\n((?:\s+--hash=sha256:[0-9a-f]{64}\s*\\?\n?)+)", re.M
)


def pinned(lock: str) -> dict[str, str]:
    """{package: version} of a lock file, each checked to carry at least one hash. A package locked at
    two versions for two Pythons (numpy 2.5 left 3.11 behind) is keyed with its marker too."""
    text = (ROOT / "requirements" / LOCKS[lock]).read_text()
    found = {}
    for m in _PIN.finditer(text):
        marker = m.group(3).strip(" ;")
        found[canonicalize_name(m.group(1)) + (f" ; {marker}" if marker else "")] = m.group(2)
    listed = [line.split("==")[0] for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(found) == len(listed), f"{lock}: a package without a hash"
    return found


def declared(extra: str | None) -> set[str]:
    raw = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    names = {canonicalize_name(Requirement(r).name) for r in raw}
    return names - {canonicalize_name(PROJECT["name"])}


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime", [None]), ("sinks", [None, "sinks"]), ("dev", [None, "sinks", "dev"])]
)
def test_every_declared_dependency_is_locked_with_hashes(lock: str, extras: list[str | None]) -> None:
    locked = {name.split(" ;")[0] for name in pinned(lock)}
    missing = set().union(*(declared(extra) for extra in extras)) - locked
    assert not missing, f"run `make lock`: {sorted(missing)} not in requirements/{LOCKS[lock]}"


def test_the_runtime_set_has_no_dev_tool() -> None:
    tools = declared("dev") | declared("sinks")
    assert not tools & set(pinned("runtime")) - declared(None)


def test_a_package_has_one_version_in_every_lock() -> None:
    runtime = pinned("runtime")
    for lock in ("sinks", "dev"):
        for name, version in pinned(lock).items():
            assert runtime.get(name, version) == version, (lock, name)


def test_the_installer_pip_bootstraps_is_the_uv_of_the_dev_lock() -> None:
    # `make install` has pip install uv alone from requirements/uv.txt, then uv installs the rest.
    assert pinned("uv") == {"uv": pinned("dev")["uv"]}


def test_the_image_installs_the_lock_before_copying_the_code() -> None:
    steps = [
        line.split()[0] + " " + line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line[:4] in ("COPY", "RUN ")
    ]
    for stage_start in ("COPY requirements/dev.txt", "COPY requirements/runtime.txt"):
        at = steps.index(stage_start)
        assert steps[at + 1] == "RUN pip" and steps[at + 2] == "COPY .", stage_start
