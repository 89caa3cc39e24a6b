"""CPU per request of two edge trees (or HAProxy), alternating, for measuring one optimisation.

    .venv/bin/python perf/edge_ab.py /tmp/edge_before,. --rounds 5
    .venv/bin/python perf/edge_ab.py .,haproxy
    .venv/bin/python perf/edge_ab.py .,.@OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318

Each tree is a folder holding an `edge` package (and `kit`), e.g. `git archive HEAD edge kit | tar -x
-C /tmp/edge_before`; `haproxy` stands for HAProxy with `perf/edge_haproxy.cfg`; `@VAR=value` after a
tree sets a variable for that edge alone (the same tree may run twice, e.g. traced and not). All run
one worker (one thread) in front of the same granian upstream, every duty on, and take turns at a
fixed rate (3,000 req/s by default) so that load from elsewhere hits them alike. Prints the median
CPU time per request of each. The 10 ms clock tick makes a figure good to about ±1 µs at the defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perf.edge_bench import (  # noqa: E402
    BENCH_USER_LIMIT,
    CLUSTERS,
    PATH,
    cpu_seconds,
    free_port,
    granian_command,
    haproxy_env,
    need_tools,
    process_tree,
    run_hey,
    token_for,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", help="comma-separated edge trees, or haproxy")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rate", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    need_tools()
    token = token_for()
    upstream_port = free_port()
    upstream = subprocess.Popen(
        granian_command(upstream_port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    proxies: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    for tree in args.trees.split(","):
        folder, *assignments = tree.split("@")
        port = free_port()
        if folder == "haproxy":
            env = haproxy_env(1, port, upstream_port)
            command = ["haproxy", "-db", "-f", str(ROOT / "perf/edge_haproxy.cfg")]
            cwd = ROOT
        else:
            cwd = Path(folder).resolve()
            env = {
                **os.environ,
                "PYTHONPATH": str(cwd),
                "EDGE_PORT": str(port),
                "EDGE_WORKERS": "1",
                "EDGE_ADMIN_PORT": "0",
                "EDGE_HEALTH_INTERVAL": "0",
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_USER_PER_MINUTE": str(BENCH_USER_LIMIT),
                **{f"EDGE_CLUSTER_{name}": f"http://127.0.0.1:{upstream_port}" for name in CLUSTERS},
                **dict(assignment.split("=", 1) for assignment in assignments),
            }
            command = [sys.executable, "-m", "edge"]
        proxies[tree] = (subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL), port)
    time.sleep(2.5)
    figures: dict[str, list[float]] = {tree: [] for tree in proxies}
    try:
        for _ in range(args.rounds):
            for tree, (process, port) in proxies.items():
                pids = process_tree(process.pid)
                before = cpu_seconds(pids)
                served, _, _ = run_hey(f"http://127.0.0.1:{port}{PATH}", token, args.rate, 30, args.seconds)
                figures[tree].append((cpu_seconds(pids) - before) / served * 1e6)
    finally:
        for process, _ in proxies.values():
            process.terminate()
        upstream.terminate()
    for tree, values in figures.items():
        each = ", ".join(f"{value:.1f}" for value in values)
        print(f"{tree:30} median {statistics.median(values):6.1f} µs/request  ({each})")
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
