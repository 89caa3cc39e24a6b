"""CPU per request of the edge's client side alone, in-process, for two or more trees in turns.

    .venv/bin/python perf/protocol_ab.py /tmp/before,/tmp/after --rounds 8

Each tree is a folder holding an `edge` package with a current compiled build (`python -m edge.native`
run in it; the run refuses an unbuilt tree). One process per tree and round feeds one `HttpProtocol`
GETs with six headers over a transport that only counts writes, and a handler that answers each at
once: the parsing, the head's rules, the pipeline and the answer's framing, without sockets, the
proxy or the event loop's I/O. Prints the median CPU time per request of each tree; finer than
perf/edge_ab.py (a few hundredths of a µs), and blind to everything outside the protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WARM_UP = 2000
REQUEST = (
    b"GET /api/products/42?x=1 HTTP/1.1\r\nhost: shop\r\nuser-agent: hey/0.0.1\r\n"
    b"accept: application/json\r\nauthorization: Bearer abc.def.ghi\r\n"
    b"content-type: application/json\r\naccept-encoding: gzip\r\n\r\n"
)


class CountingWire:
    """The transport: counts the answers written, never pauses."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.1", 50000) if name == "peername" else default


def compiled_protocol() -> tuple[Any, Any]:
    """The tree's compiled HttpProtocol and Limits (the process's `edge` is the tree to measure)."""
    from edge import loader

    loader.use_native("require")
    from edge.protocol import HttpProtocol

    # Where Limits lives depends on the tree (a plain import could find the worktree's own module
    # through its editable install).
    if Path("edge/limits.py").exists():
        from edge.limits import Limits
    else:
        from edge.protocol import Limits  # type: ignore[attr-defined]
    return HttpProtocol, Limits


async def measure(protocol_class: Any, limits_class: Any, requests: int) -> float:
    """Seconds of CPU per request."""

    def answer(ex: Any) -> None:
        ex.respond(200, b"content-type: application/json\r\n", b'{"ok":true}')
        ex.done()

    wire = CountingWire()
    protocol = protocol_class(answer, limits_class(), set())
    protocol.connection_made(wire)
    for _ in range(WARM_UP):
        protocol.data_received(REQUEST)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
    elapsed = time.process_time() - started
    assert wire.writes == WARM_UP + requests, "not every request was answered"
    return elapsed / requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", help="comma-separated edge trees")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(asyncio.run(measure(*compiled_protocol(), args.requests)))
        return
    figures: dict[str, list[float]] = {tree: [] for tree in args.trees.split(",")}
    for _ in range(args.rounds):
        for tree in figures:
            folder = Path(tree).resolve()
            command = [sys.executable, str(Path(__file__).resolve()), tree, "--measure"]
            command += ["--requests", str(args.requests)]
            env = {**os.environ, "PYTHONPATH": str(folder)}
            result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=True)
            figures[tree].append(float(result.stdout) * 1e6)
    for tree, values in figures.items():
        each = ", ".join(f"{value:.2f}" for value in values)
        print(f"{tree:30} median {statistics.median(values):6.2f} µs/request  ({each})")
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
