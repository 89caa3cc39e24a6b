"""The benchmark judge (perf/bench_baseline.py) on synthetic pytest-benchmark results: figures are
compared as ratios to the in-run calibration, so a slower machine is no regression and a slower
benchmark is."""

from __future__ import annotations

from typing import Any

import pytest

from perf.bench_baseline import LOOSE_TOLERANCE, best_of, compare, ratios, refreshed, widened

pytestmark = pytest.mark.offline


def results(calibration: float, **best: float) -> dict[str, Any]:
    names = {"test_calibration": calibration, **best}
    return {"benchmarks": [{"name": name, "stats": {"min": seconds}} for name, seconds in names.items()]}


BASELINE = refreshed(
    ratios(results(1e-3, test_parse=2e-4, test_reserving_two_lines_with_the_lua_script=1e-4)), {"cpu": "A"}
)


def test_a_machine_twice_as_slow_everywhere_is_no_regression() -> None:
    slower = ratios(results(2e-3, test_parse=4e-4, test_reserving_two_lines_with_the_lua_script=2e-4))
    assert [v.regressed for v in compare(slower, BASELINE)] == [False, False]


def test_a_benchmark_slower_by_more_than_its_tolerance_regresses() -> None:
    verdicts = compare(ratios(results(1e-3, test_parse=4.5e-4)), BASELINE)
    [parse] = verdicts
    assert parse.regressed and "REGRESSED test_parse: 2.25x the baseline" in parse.line()
    assert not compare(ratios(results(1e-3, test_parse=3.5e-4)), BASELINE)[0].regressed  # 1.75x: noise


def test_round_trips_to_redis_get_a_wider_tolerance() -> None:
    assert BASELINE["cases"]["test_reserving_two_lines_with_the_lua_script"]["tolerance"] == LOOSE_TOLERANCE
    waited = ratios(results(1e-3, test_reserving_two_lines_with_the_lua_script=2.5e-4))
    assert not compare(waited, BASELINE)[0].regressed


def test_a_benchmark_missing_from_the_baseline_is_reported_not_failed() -> None:
    [new] = compare(ratios(results(1e-3, test_new_path=1e-5)), BASELINE)
    assert not new.regressed and new.line().startswith("new")


def test_a_noisy_first_run_is_judged_by_each_case_s_best_over_the_runs() -> None:
    noisy = ratios(results(1e-3, test_parse=4.5e-4))  # 2.25x in a busy minute
    calm = ratios(results(1.2e-3, test_parse=2.6e-4))  # the next run, on a slower moment everywhere
    assert compare(noisy, BASELINE)[0].regressed
    assert not compare(best_of([noisy, calm]), BASELINE)[0].regressed
    # A real regression is slow in every run.
    again = ratios(results(1e-3, test_parse=4.4e-4))
    assert compare(best_of([noisy, again]), BASELINE)[0].regressed


def test_a_baseline_widened_to_a_second_machine_passes_both_and_still_catches_a_doubling() -> None:
    # The second machine is relatively slower at parsing, relatively faster at the Lua round trip.
    other = ratios(results(1e-3, test_parse=3.4e-4, test_reserving_two_lines_with_the_lua_script=0.8e-4))
    assert compare(other, BASELINE)[0].regressed is False  # 1.7x: within the tolerance, but close
    wide = widened(BASELINE, other, {"cpu": "B"})
    assert [m["cpu"] for m in wide["machines"]] == ["A", "B"]
    assert wide["cases"]["test_parse"]["ratio"] == pytest.approx(0.34)
    assert wide["cases"]["test_reserving_two_lines_with_the_lua_script"] == {
        "ratio": 0.1,
        "tolerance": LOOSE_TOLERANCE,
    }
    assert not any(v.regressed for v in compare(other, wide))
    doubled = ratios(results(1e-3, test_parse=7e-4))
    assert compare(doubled, wide)[0].regressed
