"""The SLO smoke: the `smoke` load profile through a stack of its own, failing on any error or any
design target missed (perf/load). Not part of `make test`: `make load-smoke-ci` runs it (.ci/run),
on a namespace of its own (databases, Redis db, vhost, ports), and the report stays in
`LOAD_SMOKE_REPORT` (default perf/reports/smoke-ci) for whoever reads a failed CI log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.load]


def test_the_smoke_profile_meets_every_design_target_without_an_error(stack: dict[str, str]) -> None:
    out = Path(os.environ.get("LOAD_SMOKE_REPORT", ROOT / "perf" / "reports" / "smoke-ci"))
    command = [
        sys.executable, "-m", "perf.load", "--profile", "smoke", "--mix", "mix", "--max-errors", "0",
        "--host", stack["edge"], "--out", str(out),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, check=False)
    report = out / "report.md"
    assert report.exists(), f"the load run ended with {finished.returncode} before its report"
    assert finished.returncode == 0, report.read_text()
