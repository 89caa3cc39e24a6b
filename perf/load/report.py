"""The SLO report of a load run: its CSVs in, `report.md` and the verdict out (plots: perf/load/plots.py).

Inputs, in the run's directory: `requests.csv` (every request, perf/load/timed.py), `cpu.csv` (CPU
seconds each part of the stack spent during the run, perf/load/cpu.py) and `run.json` (what was asked
for). A run fails when an endpoint's p99 misses its design target or errors exceed the allowed share;
a miss of our own tighter target is a warning unless `strict`.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perf.load.targets import Target, target_of

ORDER_PLACED = ("POST /api/orders/checkout", 201)
RATE_LIMITED = (
    "429s are the edge's rate limits: a load run from one address needs them raised, e.g."
    " `RATE_LIMIT_IP_PER_HOUR=1000000000 RATE_LIMIT_USER_PER_MINUTE=100000000 make run`."
)


@dataclass(frozen=True)
class Sample:
    sent: float  # the intended send time, seconds since the epoch
    scenario: str
    name: str
    status: int
    latency_ms: float
    error: str

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True)
class Run:
    """What the run was asked to do, and the machine's state around it (`run.json`)."""

    profile: str
    mix: str
    rates: dict[str, float]
    duration: float
    host: str
    started: str
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    commit: str = ""
    warmup: float = 0.0  # first seconds of arrivals plotted but not judged (connections, cold caches)


@dataclass(frozen=True)
class Endpoint:
    name: str
    target: Target
    count: int
    errors: int
    rate: float
    p50: float
    p95: float
    p99: float
    slowest: float

    @property
    def misses_design(self) -> bool:
        return self.target.design_ms is not None and self.p99 > self.target.design_ms

    @property
    def misses_ours(self) -> bool:
        return self.p99 > self.target.ours_ms


@dataclass
class Summary:
    run: Run
    endpoints: list[Endpoint]
    requests: int
    errors: int
    span: float  # seconds from the first intended send to the last
    first_judged: float = 0.0  # the first intended send after the warm-up
    cpu: dict[str, float] = field(default_factory=dict)
    orders: int = 0
    errors_seen: dict[str, int] = field(default_factory=dict)
    machine: list[tuple[float, float, float]] = field(default_factory=list)  # see `read_machine`

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.span if self.span else 0.0


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0..1) of an ascending sequence: a latency some request had."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def read_samples(path: Path) -> list[Sample]:
    with path.open(newline="") as handle:
        return [
            Sample(
                float(r["sent"]),
                r["scenario"],
                r["name"],
                int(r["status"]),
                float(r["latency_ms"]),
                r["error"],
            )
            for r in csv.DictReader(handle)
        ]


def read_cpu(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {r["part"]: float(r["cpu_seconds"]) for r in csv.DictReader(handle)}


def write_cpu(path: Path, spent: dict[str, float]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("part", "cpu_seconds"))
        for part, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            writer.writerow((part, f"{seconds:.3f}"))


def write_machine(path: Path, busy: list[tuple[float, float, float]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("time", "stack_cores", "other_cores"))
        writer.writerows((f"{t:.2f}", f"{stack:.3f}", f"{other:.3f}") for t, stack, other in busy)


def read_machine(path: Path) -> list[tuple[float, float, float]]:
    """The cores busy with the stack and with other work, second by second (`machine.csv`)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            (float(r["time"]), float(r["stack_cores"]), float(r["other_cores"]))
            for r in csv.DictReader(handle)
        ]


def read_run(path: Path) -> Run:
    raw = json.loads(path.read_text())
    raw["load_average"] = tuple(raw.get("load_average", (0.0, 0.0)))
    return Run(**raw)


def summarise(run: Run, samples: Sequence[Sample], cpu: dict[str, float]) -> Summary:
    """The figures of the run after its warm-up."""
    judged_from = min(s.sent for s in samples) + run.warmup if samples else 0.0
    samples = [s for s in samples if s.sent >= judged_from]
    by_name: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_name[sample.name].append(sample)
    span = (max(s.sent for s in samples) - min(s.sent for s in samples)) if samples else 0.0
    span = max(span, run.duration if not samples else 1.0)
    endpoints = []
    for name, group in sorted(by_name.items()):
        ordered = sorted(s.latency_ms for s in group)
        endpoints.append(
            Endpoint(
                name, target_of(name), len(group), sum(s.failed for s in group), len(group) / span,
                percentile(ordered, 0.5), percentile(ordered, 0.95), percentile(ordered, 0.99), ordered[-1],
            )
        )  # fmt: skip
    seen: dict[str, int] = defaultdict(int)
    for sample in samples:
        if sample.failed:
            seen[f"{sample.name}: {sample.error[:100]}"] += 1
    orders = sum((s.name, s.status) == ORDER_PLACED for s in samples)
    failed = sum(s.failed for s in samples)
    return Summary(run, endpoints, len(samples), failed, span, judged_from, cpu, orders, dict(seen))


def verdict(summary: Summary, max_error_share: float, strict: bool = False) -> list[str]:
    """Why the run fails, one line a reason; empty when it passes."""
    misses = []
    if summary.requests == 0:
        misses.append("no request was recorded")
    if summary.error_share > max_error_share:
        misses.append(
            f"errors: {summary.errors} of {summary.requests} requests ({summary.error_share:.2%}),"
            f" more than the {max_error_share:.2%} allowed"
        )
    for e in summary.endpoints:
        if e.misses_design:
            misses.append(f"{e.name}: p99 {e.p99:.0f} ms over the design's {e.target.design_ms:.0f} ms")
        elif strict and e.misses_ours:
            misses.append(f"{e.name}: p99 {e.p99:.0f} ms over our {e.target.ours_ms:.0f} ms")
    return misses


def windows(samples: Iterable[Sample], width: float) -> dict[float, list[Sample]]:
    """Samples by window of `width` seconds of intended send time, keyed by the window's start
    (seconds from the first sample)."""
    ordered = sorted(samples, key=lambda s: s.sent)
    grouped: dict[float, list[Sample]] = defaultdict(list)
    if ordered:
        first = ordered[0].sent
        for sample in ordered:
            grouped[math.floor((sample.sent - first) / width) * width].append(sample)
    return dict(grouped)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _mark(endpoint: Endpoint) -> str:
    if endpoint.misses_design:
        return "**missed**"
    if endpoint.misses_ours:
        return "design met, ours missed"
    return "met" if endpoint.target.design_ms is not None else "ours met"


def render(summary: Summary, misses: list[str], plots: Sequence[str]) -> str:
    """`report.md`: the verdict first, then the figures a reader checks, then the plots."""
    run = summary.run
    rates = ", ".join(f"{k} {v:g}/s" for k, v in run.rates.items())
    lines = [
        f"# Load run `{run.profile}` ({run.mix}), {run.started}",
        "",
        f"**{'FAILED' if misses else 'PASSED'}**" + (":" if misses else ""),
        *(f"- {miss}" for miss in misses),
        "",
        f"- offered (open loop): {rates}, for {run.duration:g} s against {run.host}"
        + (f", commit {run.commit}" if run.commit else ""),
        f"- achieved: {summary.requests:,} requests in {summary.span:.0f} s = **{summary.rate:,.1f} req/s**,"
        f" {summary.orders:,} orders placed ({summary.orders / summary.span:.2f}/s),"
        f" errors {summary.errors:,} ({summary.error_share:.2%})",
        f"- machine: 1-minute load average {run.load_average[0]:.2f} before, {run.load_average[1]:.2f} after"
        " (2 shared cores: other work on them shows in the tail latencies)",
        "",
        "Latencies are from each request's intended send time (open loop, no coordinated omission);",
        "targets are p99: the design's (architecture.md) fail the run, ours are the tighter goal."
        + (
            f" The first {run.warmup:g} s are warm-up: in the plots, not in the figures."
            if run.warmup
            else ""
        ),
        "",
        "| endpoint | kind | requests | req/s | errors | p50 ms | p95 ms | p99 ms | max ms | design | ours"
        " | |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for e in summary.endpoints:
        design = f"{e.target.design_ms:.0f}" if e.target.design_ms is not None else "-"
        lines.append(
            f"| `{e.name}` | {e.target.kind} | {e.count:,} | {e.rate:,.1f} | {e.errors:,} | {_ms(e.p50)} |"
            f" {_ms(e.p95)} | {_ms(e.p99)} | {_ms(e.slowest)} | {design} | {e.target.ours_ms:.0f}"
            f" | {_mark(e)} |"
        )
    if summary.errors_seen:
        lines += ["", "Errors by endpoint and answer:", ""]
        for what, count in sorted(summary.errors_seen.items(), key=lambda kv: -kv[1])[:15]:
            lines.append(f"- {count:,} x {what}")
        if any(": 429: " in what for what in summary.errors_seen):
            lines += ["", RATE_LIMITED]
    lines += _cpu_lines(summary)
    lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    lines += [
        "",
        "Raw data beside this file: `requests.csv` (every request), `cpu.csv`, `machine.csv` (cores busy",
        "second by second), `run.json`, and locust's own `locust_*.csv` and `locust.html`.",
        "",
    ]
    return "\n".join(lines)


def _cpu_lines(summary: Summary) -> list[str]:
    if not summary.cpu:
        return []
    busy = {k: v for k, v in sorted(summary.cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01}
    ours = sum(v for k, v in busy.items() if k != "other")
    lines = [
        "",
        f"## CPU ({ours / summary.span:.2f} cores busy with the stack and the load generator,"
        f" {busy.get('other', 0.0) / summary.span:.2f} with other work on the machine)",
        "",
        "| part | CPU s | µs per request | ms per order placed |",
        "|---|---:|---:|---:|",
    ]
    for part, seconds in busy.items():
        if part == "other":
            continue
        per_order = f"{seconds * 1000 / summary.orders:,.2f}" if summary.orders else "-"
        lines.append(
            f"| {part} | {seconds:,.2f} | {seconds * 1e6 / max(summary.requests, 1):,.1f} | {per_order} |"
        )
    return lines


def build(directory: Path, max_error_share: float, strict: bool = False) -> tuple[Summary, list[str]]:
    """Read the run in `directory`, write `report.md` and its plots there; returns the summary and
    the reasons it fails (none when it passes)."""
    from perf.load import plots  # matplotlib is slow to import: only when a report is drawn

    samples = read_samples(directory / "requests.csv")
    summary = summarise(read_run(directory / "run.json"), samples, read_cpu(directory / "cpu.csv"))
    summary.machine = read_machine(directory / "machine.csv")
    misses = verdict(summary, max_error_share, strict)
    drawn = plots.draw(summary, samples, directory)
    (directory / "report.md").write_text(render(summary, misses, drawn))
    return summary, misses
