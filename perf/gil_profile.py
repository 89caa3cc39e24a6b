"""Where a running process's Python time goes: py-spy's samples of the thread holding the GIL, per frame.

    .venv/bin/python perf/gil_profile.py <pid> [--seconds 8] [--rate 250] [--top 40]

Attach while a load runs (perf/catalog.py, perf/checkout_bench.py, perf/detail_ab.py ...) to a service's
worker: granian forks it from the process `python -m svc_<name>` starts (`pgrep -f 'm svc_product'` lists
both, the master first; the worker is the master's child). Only samples taken while a thread holds the
GIL count (`py-spy record --gil`): py-spy's default and `--native` modes also count threads waiting on a
lock, a futex or epoll, and once blamed granian and the event loop for time nobody spent
(perf/README.md, "Where issue 15 stands").

Prints each frame's share of the samples: inclusive (anywhere in the stack) and self (on top), paths
cut to the package; the frames that only start the process (runpy, multiprocessing, granian's server)
are left out, and "(no Python frame)" is native work under the event loop itself: uvloop, granian's
bridge, grpc's core, asyncpg's protocol reading.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Frames of the process's start-up, below everything it does: not worth a line of the tables.
_START_UP = re.compile(
    r"\((<frozen runpy>|multiprocessing/|granian/server/|kit/serve\.py|svc_\w+/__main__\.py)"
)
# Paths cut to the package: the repository's, an installed package's, the standard library's.
_PATH = re.compile(
    rf"\((?:{re.escape(str(Path(__file__).resolve().parent.parent))}/|/\S*?/site-packages/|/\S*?/lib/python3\.\d+/)"
)
NO_FRAME = "(no Python frame)"


@dataclass
class Shares:
    samples: int
    inclusive: Counter[str]
    own: Counter[str]


def shares(raw: str) -> Shares:
    """Sum py-spy's raw output (`frame;frame;... count` per line, outermost first) per frame."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        samples += int(count)
        frames = [_PATH.sub("(", frame) for frame in stack.split(";") if frame]
        doing = [frame for frame in frames if not _START_UP.search(frame)] or [NO_FRAME]
        for frame in set(doing):
            inclusive[frame] += int(count)
        own[doing[-1]] += int(count)
    return Shares(samples, inclusive, own)


def report(found: Shares, top: int) -> str:
    lines = [f"{found.samples} samples holding the GIL"]
    for title, counts in (("inclusive", found.inclusive), ("self", found.own)):
        lines.append(f"\n{title}:")
        lines += [f"{100 * n / found.samples:5.1f} %  {frame}" for frame, n in counts.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pid", type=int)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    spy = Path(sys.executable).parent / "py-spy"
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [
            str(spy), "record", "--pid", str(args.pid), "--duration", str(args.seconds),
            "--rate", str(args.rate), "--format", "raw", "--gil", "--output", out.name,
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        print(report(shares(Path(out.name).read_text()), args.top))


if __name__ == "__main__":
    main()
