"""Several load runs side by side, one Markdown row each: how latency grows with the offered rate.

    .venv/bin/python -m perf.load.compare perf/reports/knee-*

The figures are each run's own (its `requests.csv` after the warm-up, its `machine.csv`), per kind of
endpoint: p50 / p99 in ms. "other cores" is how much of the machine other work took meanwhile.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perf.load.report import Summary, percentile, read_cpu, read_machine, read_run, read_samples, summarise
from perf.load.targets import CART, CHECKOUT, DETAIL, LIST, SEARCH, Target, target_of

KINDS = (DETAIL, LIST, SEARCH, CART, CHECKOUT)


def _kind(summary: Summary, directory: Path, kind: Target) -> str:
    start = summary.first_judged
    latencies = sorted(
        s.latency_ms
        for s in read_samples(directory / "requests.csv")
        if target_of(s.name) is kind and s.sent >= start and not s.failed
    )
    if not latencies:
        return "-"
    return f"{percentile(latencies, 0.5):,.0f} / {percentile(latencies, 0.99):,.0f}"


def row(directory: Path, max_error_share: float) -> str:
    run = read_run(directory / "run.json")
    summary = summarise(run, read_samples(directory / "requests.csv"), read_cpu(directory / "cpu.csv"))
    machine = read_machine(directory / "machine.csv")
    other = f"{sum(o for _, _, o in machine) / len(machine):.2f}" if machine else "-"
    missed = [e.name for e in summary.endpoints if e.misses_design]
    verdict = "PASSED" if not missed and summary.error_share <= max_error_share else f"{len(missed)} missed"
    rates = ", ".join(f"{k} {v:g}" for k, v in run.rates.items())
    kinds = " | ".join(_kind(summary, directory, kind) for kind in KINDS)
    return (
        f"| {rates} | {summary.rate:,.0f} | {summary.error_share:.2%} | {kinds} | {other} |"
        f" {run.load_average[0]:.1f} | {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="report directories of perf/load runs")
    parser.add_argument("--max-errors", type=float, default=0.01)
    args = parser.parse_args()
    kinds = " | ".join(f"{k.kind} p50 / p99" for k in KINDS)
    print(f"| offered arrivals/s | achieved req/s | errors | {kinds} | other cores | load avg | verdict |")
    print("|---|---:|---:|" + "---:|" * len(KINDS) + "---:|---:|---|")
    for directory in args.runs:
        print(row(directory, args.max_errors))


if __name__ == "__main__":
    main()
