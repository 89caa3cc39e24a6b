"""The CPU accounting of a load run (perf/load/cpu.py): readings taken every second, and what each
part of the stack spent over the arrivals' window only."""

from __future__ import annotations

import pytest

from perf.load.cpu import MACHINE, Reading, busy_over_time, spent_during

pytestmark = pytest.mark.offline

# "other" is the sum over other live processes: it drops at 103, when one of them exits.
READINGS: list[Reading] = [
    (100.0, {"edge": 1.0, "svc_product": 2.0, "other": 10.0, MACHINE: 13.0}),  # start-up
    (101.0, {"edge": 1.5, "svc_product": 2.5, "other": 10.2, MACHINE: 14.2}),
    (102.0, {"edge": 2.5, "svc_product": 3.5, "other": 11.2, MACHINE: 17.2}),
    (103.0, {"edge": 3.0, "svc_product": 4.0, "other": 5.0, MACHINE: 18.6}),  # after
]


def test_cpu_is_counted_over_the_readings_that_enclose_the_arrivals() -> None:
    spent = spent_during(READINGS, start=101.3, end=102.5)
    # From the reading at 101 (the last before the start) to the one at 103 (the first after the end).
    # "other" is what the machine did beyond the stack: 4.4 s busy, 3.0 of them the stack's.
    assert spent == pytest.approx({"edge": 1.5, "svc_product": 1.5, "other": 1.4})


def test_a_window_past_the_readings_uses_the_first_and_last() -> None:
    assert spent_during(READINGS, start=50.0, end=500.0)["edge"] == pytest.approx(2.0)


def test_busy_cores_split_the_stack_from_other_work_second_by_second() -> None:
    busy = [value for second in busy_over_time(READINGS) for value in second]
    assert busy == pytest.approx([101.0, 1.0, 0.2, 102.0, 2.0, 1.0, 103.0, 1.0, 0.4])
