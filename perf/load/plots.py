"""The report's PNG plots (matplotlib, drawn off-screen): latency percentiles over time by kind of
endpoint against the targets, throughput and errors over time, each endpoint's p99 against its
targets, and the CPU each part of the stack spent per request."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from perf.load.report import Sample, Summary, percentile, windows
from perf.load.targets import KINDS, target_of

DESIGN_COLOUR, OURS_COLOUR = "#c0392b", "#e67e22"
PERCENTILES = ((0.5, "p50", "#2e86c1"), (0.95, "p95", "#8e44ad"), (0.99, "p99", "#17202a"))


def window_width(span: float) -> float:
    """About twenty points across the run, in whole seconds (enough samples in each for a p99)."""
    return float(max(1, math.ceil(span / 20)))


def draw(summary: Summary, samples: Sequence[Sample], directory: Path) -> list[str]:
    """Write the plots into `directory`; returns their file names, in the order the report shows them."""
    width = window_width(summary.span)
    drawn = []
    plots: tuple[tuple[str, Callable[[], Figure | None]], ...] = (
        ("latency.png", lambda: _latency(samples, width)),
        ("throughput.png", lambda: _throughput(samples, width, summary.machine)),
        ("p99_targets.png", lambda: _p99(summary)),
        ("cpu.png", lambda: _cpu(summary)),
    )
    for name, plot in plots:
        figure = plot()
        if figure is None:
            continue
        figure.savefig(directory / name, dpi=90)
        plt.close(figure)
        drawn.append(name)
    return drawn


def _latency(samples: Sequence[Sample], width: float) -> Figure | None:
    kinds = [k for k in KINDS if any(target_of(s.name) is k for s in samples)]
    if not kinds:
        return None
    rows = math.ceil(len(kinds) / 2)
    figure, axes = plt.subplots(rows, 2, figsize=(11, 2.8 * rows), squeeze=False, sharex=True)
    for ax, kind in zip(axes.flat, kinds, strict=False):
        chosen = windows((s for s in samples if target_of(s.name) is kind and not s.failed), width)
        times = sorted(chosen)
        highest = 0.0
        for q, label, colour in PERCENTILES:
            values = [percentile(sorted(s.latency_ms for s in chosen[t]), q) for t in times]
            ax.plot(times, values, label=label, color=colour, linewidth=1.4 if label == "p99" else 1.0)
            highest = max([highest, *values])
        if kind.design_ms is not None:
            ax.axhline(kind.design_ms, color=DESIGN_COLOUR, linestyle="--", linewidth=1, label="design p99")
        ax.axhline(kind.ours_ms, color=OURS_COLOUR, linestyle=":", linewidth=1, label="our p99")
        ax.set_title(kind.kind, fontsize=10)
        if highest > 10 * (kind.design_ms or kind.ours_ms):
            ax.set_yscale("log")  # an overloaded run: seconds of queueing would flatten the targets
            ax.set_ylabel("ms (log)")
        else:
            ax.set_ylabel("ms")
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(kinds) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, loc="upper left", ncols=5)
    for ax in axes[-1]:
        ax.set_xlabel(f"seconds into the run ({width:g} s windows)")
    figure.suptitle("Latency from the intended send time, by kind of endpoint")
    figure.tight_layout()
    return figure


def _throughput(
    samples: Sequence[Sample], width: float, machine: Sequence[tuple[float, float, float]]
) -> Figure | None:
    grouped = windows(samples, width)
    if not grouped:
        return None
    times = sorted(grouped)
    scenarios = sorted({s.scenario for s in samples})
    figure, (rates, errors, cores) = plt.subplots(
        3, 1, figsize=(11, 7), sharex=True, height_ratios=(3, 1, 1.5)
    )
    stacked = [[sum(s.scenario == name for s in grouped[t]) / width for t in times] for name in scenarios]
    rates.stackplot(times, stacked, labels=scenarios, step="post", alpha=0.8)
    rates.set_ylabel("requests/s")
    rates.set_title("Throughput by scenario (stacked) and errors")
    rates.legend(fontsize=8, loc="upper left")
    rates.grid(alpha=0.3)
    errors.step(
        times, [sum(s.failed for s in grouped[t]) / width for t in times], where="post", color=DESIGN_COLOUR
    )
    errors.set_ylabel("errors/s")
    errors.set_ylim(bottom=0)
    errors.grid(alpha=0.3)
    first = min(s.sent for s in samples)
    shown = [(t - first, stack, other) for t, stack, other in machine if t >= first]
    cores.stackplot(
        [t for t, _, _ in shown], [s for _, s, _ in shown], [o for _, _, o in shown],
        labels=("this stack + load generator", "other work on the machine"), colors=("#5d6d7e", "#e67e22"),
        alpha=0.8,
    )  # fmt: skip
    cores.set_ylabel("cores busy")
    cores.legend(fontsize=8, loc="upper left")
    cores.grid(alpha=0.3)
    cores.set_xlabel(f"seconds into the run ({width:g} s windows)")
    figure.tight_layout()
    return figure


def _p99(summary: Summary) -> Figure | None:
    endpoints = summary.endpoints
    if not endpoints:
        return None
    figure, ax = plt.subplots(figsize=(11, 0.32 * len(endpoints) + 1.2))
    colours = ["#c0392b" if e.misses_design else "#2e86c1" for e in endpoints]
    ax.barh(range(len(endpoints)), [e.p99 for e in endpoints], color=colours)
    ax.set_yticks(range(len(endpoints)), [e.name for e in endpoints], fontsize=8)
    ax.invert_yaxis()
    for row, e in enumerate(endpoints):
        if e.target.design_ms is not None:
            ax.plot([e.target.design_ms] * 2, [row - 0.4, row + 0.4], color=DESIGN_COLOUR, linewidth=2)
        ax.plot([e.target.ours_ms] * 2, [row - 0.4, row + 0.4], color=OURS_COLOUR, linewidth=2, linestyle=":")
    ax.set_xlabel("p99 ms (red line: design target, orange dotted: ours; a red bar misses the design)")
    ax.set_title("Each endpoint's p99 against its targets")
    ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def _cpu(summary: Summary) -> Figure | None:
    busy = {k: v for k, v in sorted(summary.cpu.items(), key=lambda kv: -kv[1]) if v >= 0.01 and k != "other"}
    if not busy or not summary.requests:
        return None
    figure, ax = plt.subplots(figsize=(11, 0.3 * len(busy) + 1.2))
    ax.barh(range(len(busy)), [v * 1e6 / summary.requests for v in busy.values()], color="#5d6d7e")
    ax.set_yticks(range(len(busy)), list(busy), fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("µs of CPU per request (all requests of the run)")
    ax.set_title("CPU by part of the stack")
    figure.tight_layout()
    return figure
