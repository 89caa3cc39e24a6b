"""The SLO report (perf/load/report.py, plots.py) built from synthetic CSVs: the figures a reader
checks, the verdict that fails a run, and the files it writes."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from perf.load import compare
from perf.load.report import (
    Run,
    Sample,
    build,
    percentile,
    read_samples,
    summarise,
    verdict,
    write_cpu,
    write_machine,
)  # fmt: skip
from perf.load.timed import SAMPLE_COLUMNS

pytestmark = pytest.mark.offline

RUN = Run("smoke", "mix", {"browser": 10.0, "buyer": 1.0}, 10.0, "http://edge", "2026-12-05 00:00 UTC")
DETAIL, CHECKOUT, TREE = "GET /api/products/{id}", "POST /api/orders/checkout", "GET /api/categories"


def samples(name: str, latencies: list[float], start: float = 1000.0, status: int = 200) -> list[Sample]:
    """One sample per latency, sent 0.1 s apart from `start`."""
    return [Sample(start + i * 0.1, "browser", name, status, ms, "") for i, ms in enumerate(latencies)]


def write_run(directory: Path, rows: list[Sample], run: Run = RUN) -> None:
    with (directory / "requests.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SAMPLE_COLUMNS)
        writer.writerows((s.sent, s.scenario, s.name, s.status, s.latency_ms, s.error) for s in rows)
    (directory / "run.json").write_text(json.dumps(asdict(run)))
    write_cpu(directory / "cpu.csv", {"svc_product": 2.0, "edge": 1.0, "other": 0.5})
    write_machine(directory / "machine.csv", [(1000.0 + t, 1.2, 0.6) for t in range(0, 30)])


def test_percentiles_are_nearest_rank_latencies_a_request_really_had() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert (percentile(ordered, 0.5), percentile(ordered, 0.99), percentile(ordered, 1.0)) == (50, 99, 100)
    assert percentile([7.0], 0.99) == 7.0


def test_the_summary_gives_each_endpoint_its_rate_percentiles_and_errors() -> None:
    detail = samples(DETAIL, [float(n) for n in range(1, 101)])
    failed = Sample(1005.0, "buyer", CHECKOUT, 422, 30.0, "422: out of stock")
    placed = samples(CHECKOUT, [100.0, 120.0], status=201)
    summary = summarise(RUN, [*detail, *placed, failed], {})
    by_name = {e.name: e for e in summary.endpoints}
    assert (by_name[DETAIL].count, by_name[DETAIL].p50, by_name[DETAIL].p99) == (100, 50, 99)
    assert by_name[CHECKOUT].errors == 1 and summary.orders == 2
    assert summary.requests == 103 and summary.errors == 1
    assert summary.rate == pytest.approx(103 / 9.9)  # over the span of intended send times
    assert summary.errors_seen == {f"{CHECKOUT}: 422: out of stock": 1}


def test_a_design_target_missed_fails_the_run_and_ours_only_warns() -> None:
    slow_detail = summarise(RUN, samples(DETAIL, [10.0] * 98 + [60.0, 70.0]), {})  # p99 60 > design 50
    assert verdict(slow_detail, 0.01) == [f"{DETAIL}: p99 60 ms over the design's 50 ms"]
    tight = summarise(RUN, samples(DETAIL, [30.0] * 100), {})  # over our 25, under the design's 50
    assert verdict(tight, 0.01) == []
    assert verdict(tight, 0.01, strict=True) == [f"{DETAIL}: p99 30 ms over our 25 ms"]
    untargeted = summarise(RUN, samples(TREE, [150.0] * 10), {})  # no design target: never fails
    assert verdict(untargeted, 0.01) == []


def test_errors_over_the_allowed_share_fail_the_run() -> None:
    rows = [*samples(DETAIL, [5.0] * 99), Sample(1010.0, "browser", DETAIL, 503, 5.0, "503: down")]
    summary = summarise(RUN, rows, {})
    assert verdict(summary, 0.01) == []
    assert verdict(summary, 0.0) == ["errors: 1 of 100 requests (1.00%), more than the 0.00% allowed"]
    assert verdict(summarise(RUN, [], {}), 0.01) == ["no request was recorded"]


def test_the_warm_up_is_left_out_of_the_figures() -> None:
    cold = samples(DETAIL, [400.0] * 10, start=1000.0)  # the first second: connections, cold caches
    warm = samples(DETAIL, [5.0] * 100, start=1002.0)
    summary = summarise(Run(**{**asdict(RUN), "warmup": 2.0}), cold + warm, {})
    assert summary.requests == 100 and summary.endpoints[0].p99 == 5.0


def test_build_writes_the_report_and_its_plots_from_the_csvs(tmp_path: Path) -> None:
    rows = samples(DETAIL, [8.0] * 300) + samples(CHECKOUT, [90.0] * 20, status=201)
    rows.append(Sample(1001.0, "browser", DETAIL, 0, 3000.0, "no answer: connection refused"))
    write_run(tmp_path, rows)
    assert read_samples(tmp_path / "requests.csv")[0] == rows[0]
    summary, misses = build(tmp_path, max_error_share=0.0)
    # One failed request in 321 fails a run allowed none; its 3 s are beyond the detail's p99.
    assert misses == ["errors: 1 of 321 requests (0.31%), more than the 0.00% allowed"]
    assert summary.endpoints[0].slowest == 3000.0
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Load run `smoke` (mix)") and "**FAILED**" in report
    assert f"| `{CHECKOUT}` | checkout | 20 |" in report
    assert "| svc_product | 2.00 |" in report and "ms per order placed" in report
    for plot in ("latency.png", "throughput.png", "p99_targets.png", "cpu.png"):
        assert f"![{plot[:-4]}]({plot})" in report
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")


def test_a_clean_run_passes(tmp_path: Path) -> None:
    write_run(tmp_path, samples(DETAIL, [8.0] * 200) + samples(CHECKOUT, [90.0] * 20, status=201))
    summary, misses = build(tmp_path, max_error_share=0.0)
    assert misses == [] and "**PASSED**" in (tmp_path / "report.md").read_text()
    assert summary.orders == 20


def test_rate_limited_answers_point_at_the_limits_to_raise(tmp_path: Path) -> None:
    limited = Sample(1001.0, "browser", DETAIL, 429, 1.0, '429: {"error":"RateLimited"}')
    write_run(tmp_path, [*samples(DETAIL, [8.0] * 50), limited])
    build(tmp_path, max_error_share=0.01)
    assert "RATE_LIMIT_IP_PER_HOUR=1000000000" in (tmp_path / "report.md").read_text()


def test_runs_side_by_side_give_one_row_each_with_p50_and_p99_by_kind(tmp_path: Path) -> None:
    write_run(tmp_path, samples(DETAIL, [4.0] * 98 + [30.0] * 2) + samples(CHECKOUT, [90.0] * 20, status=201))
    line = compare.row(tmp_path, max_error_share=0.01)
    assert line.startswith("| browser 10, buyer 1 |") and line.endswith("| PASSED |")
    assert "| 4 / 30 |" in line and "| 90 / 90 |" in line and "| 0.60 |" in line  # other cores
