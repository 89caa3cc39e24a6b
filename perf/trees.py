"""Processes run from another tree of the repository (a `git archive` of an earlier commit, a worktree),
for the benchmarks that compare trees taking turns (perf/detail_ab.py, perf/checkout_ab.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.processes import die_with_parent


def start(
    module: str, tree: Path, env: Mapping[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m module` with `tree`'s packages first on the path, ended with its parent; its warnings
    and errors appended to `log` (else dropped)."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=tree,
        env={**os.environ, **env, "PYTHONPATH": str(tree), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if log is None else log.open("ab"),
        preexec_fn=die_with_parent,
    )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate `processes` and wait for them (killed after 20 s)."""
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
