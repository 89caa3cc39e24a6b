"""The edge runs its compiled build when, and only when, the build is what its source says."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge import loader
from edge.loader import COMPILED, DIGEST_FILE, NativeBuildUnusable, native_search_path, sources_digest, stamp

pytestmark = pytest.mark.offline

COMPILER = "mypy 1.0.0"


def test_this_run_uses_the_compiled_build_unless_told_not_to() -> None:
    # `make test` builds first; a failure here means the build is missing or stale (`make native`).
    compiled = os.environ.get("EDGE_NATIVE", "auto") != "off"
    assert loader.runs_compiled() is compiled
    for name in COMPILED:
        # A module first imported by another compiled one names a path below the build, not in it.
        loaded_from = Path(importlib.import_module(f"edge.{name}").__file__ or "")
        assert (loader.NATIVE_DIR in loaded_from.parents) is compiled, loaded_from
        assert loaded_from.name.endswith(".so") is compiled, loaded_from


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the edge's sources, as a package folder."""
    package_dir = tmp_path / "edge"
    package_dir.mkdir()
    for source in loader.PACKAGE_DIR.glob("*.py"):
        shutil.copy(source, package_dir)
    return package_dir


def built(package_dir: Path) -> Path:
    native_dir = package_dir / "_native"
    native_dir.mkdir()
    (native_dir / DIGEST_FILE).write_text(stamp(package_dir, COMPILER))
    return native_dir


def test_a_current_build_is_searched_before_the_source(package: Path) -> None:
    native_dir = built(package)
    assert native_search_path(package, native_dir, "auto") == [str(native_dir)]
    assert native_search_path(package, native_dir, "require") == [str(native_dir)]


def test_off_always_runs_the_source(package: Path) -> None:
    assert native_search_path(package, built(package), "off") == []


def test_a_build_older_than_its_source_is_never_used(package: Path) -> None:
    native_dir = built(package)
    with (package / "proxy.py").open("a") as source:
        source.write("\n# an edit after the build\n")
    with pytest.warns(RuntimeWarning, match="older than their source.*make native"):
        assert native_search_path(package, native_dir, "auto") == []
    with pytest.raises(NativeBuildUnusable, match="older than their source"):
        native_search_path(package, native_dir, "require")


def test_a_missing_build_runs_the_source_quietly_unless_required(package: Path) -> None:
    native_dir = package / "_native"
    assert native_search_path(package, native_dir, "auto") == []
    with pytest.raises(NativeBuildUnusable, match="not built"):
        native_search_path(package, native_dir, "require")


def test_an_unknown_mode_is_refused(package: Path) -> None:
    with pytest.raises(ValueError, match="EDGE_NATIVE must be one of auto, off, require"):
        native_search_path(package, package / "_native", "fast")


def test_the_digest_covers_every_source_and_the_compiler(package: Path) -> None:
    before = sources_digest(package, COMPILER)
    sources = sorted(package.glob("*.py"))
    assert {f"{module}.py" for module in COMPILED} < {path.name for path in sources}
    for path in sources:
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        assert sources_digest(package, COMPILER) != before, path.name
        path.write_bytes(original)
    assert sources_digest(package, COMPILER) == before
    assert sources_digest(package, "mypy 1.0.1") != before


def test_a_build_by_another_compiler_is_built_again(package: Path) -> None:
    native_dir = built(package)
    assert loader.is_current(package, native_dir, COMPILER)
    assert not loader.is_current(package, native_dir, "mypy 1.0.1")
    # The running edge checks only the sources: it need not have the compiler installed.
    assert native_search_path(package, native_dir, "require") == [str(native_dir)]


def test_an_edit_to_a_module_left_interpreted_makes_the_build_stale(package: Path) -> None:
    native_dir = built(package)
    with (package / "config.py").open("a") as source:
        source.write("\n# an edit after the build\n")
    with pytest.raises(NativeBuildUnusable, match="older than their source"):
        native_search_path(package, native_dir, "require")


def _run_unbuilt_copy(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A whole interpreter running `args` on a copy of the edge that has no build."""
    shutil.copytree(
        loader.PACKAGE_DIR, tmp_path / "edge", ignore=shutil.ignore_patterns("_native", "__pycache__")
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env={**os.environ, **env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,  # an edge that did start would serve forever
    )


def test_an_edge_required_to_run_compiled_refuses_to_start_without_a_build(tmp_path: Path) -> None:
    # `python -m edge` asks for the build before it imports anything else.
    result = _run_unbuilt_copy(tmp_path, "-m", "edge", EDGE_NATIVE="require")
    assert result.returncode != 0
    refusal = "NativeBuildUnusable: the edge's compiled modules are not built: run `make native`"
    assert refusal in result.stderr


def test_the_build_is_chosen_before_any_hot_module_is_imported(tmp_path: Path) -> None:
    code = "import edge.proxy; from edge import loader; loader.use_native('auto')"
    result = _run_unbuilt_copy(tmp_path, "-c", code)
    assert "use_native() must run before edge." in result.stderr
