"""perf/gil_profile.py's reading of py-spy's raw samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from perf.gil_profile import NO_FRAME, shares

pytestmark = pytest.mark.offline

ROOT = Path(__file__).resolve().parents[2]
SITE = "/x/.venv/lib/python3.11/site-packages"
RAW = f"""\
_run_module_as_main (<frozen runpy>:198);serve (granian/server/common.py:767) 5
_run_module_as_main (<frozen runpy>:198);Starlette.__call__ ({SITE}/starlette/applications.py:96);\
Observe.__call__ ({ROOT}/kit/metrics.py:109) 3
_run_module_as_main (<frozen runpy>:198);Starlette.__call__ ({SITE}/starlette/applications.py:96) 1
 2
"""


def test_samples_are_summed_per_frame_with_the_start_up_left_out() -> None:
    found = shares(RAW)
    assert found.samples == 11
    assert found.inclusive["Starlette.__call__ (starlette/applications.py:96)"] == 4
    assert found.own == {
        NO_FRAME: 7,  # only start-up frames, or no stack at all: native work under the loop
        "Observe.__call__ (kit/metrics.py:109)": 3,
        "Starlette.__call__ (starlette/applications.py:96)": 1,
    }
