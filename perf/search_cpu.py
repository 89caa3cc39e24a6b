"""CPU time per request of search with facets and of suggestions, by process, against a running stack.

    .venv/bin/python perf/search_cpu.py --base http://127.0.0.1:26510 --postgres-data /tmp/shop-pg-x/data

Latency on a shared two-core machine mostly measures the others' load; the CPU a request costs does
not. Each scenario of perf/catalog.py (`--only`, facets and suggest by default) runs with wrk at a
rate every version sustains (`--rate`, 100 a second), and the user + system time the svc_product and
edge processes (each with its workers) and the PostgreSQL cluster (its postmaster's children: give the
cluster's data folder, so a server of its own, not the shared one) spent meanwhile is divided by the
requests answered.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perf.catalog import run_wrk, workload  # noqa: E402


def cpu_seconds(root: psutil.Process) -> float:
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def serving(module: str, port: int) -> psutil.Process:
    """The main process of `python -m <module>` listening on `port` (granian's or the edge's parent)."""
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] and process.info["cmdline"][-2:] == ["-m", module]:
            listening = {c.laddr.port for p in [process, *process.children()] for c in p.net_connections()}
            if port in listening and process.parent() and process.parent().cmdline()[-2:] != ["-m", module]:
                return process
    raise LookupError(f"no {module} listening on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the stack's edge")
    parser.add_argument("--product", required=True, help="svc_product's URL (the process is found by port)")
    parser.add_argument("--postgres-data", type=Path, required=True, help="the cluster's data folder")
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--duration", type=int, default=20)
    args = parser.parse_args()
    edge_port = int(args.base.rsplit(":", 1)[1])
    product = serving("svc_product", int(args.product.rsplit(":", 1)[1]))
    edge = serving("edge", edge_port)
    postmaster = psutil.Process(int((args.postgres_data / "postmaster.pid").read_text().split()[0]))
    with httpx.Client(base_url=args.base, timeout=10) as client:
        scenarios = workload(client, 1)
    print("| scenario | req/s | svc_product ms/req | edge ms/req | PostgreSQL ms/req | all ms/req |")
    print("|---|---|---|---|---|---|")
    for name in args.only or ["facets", "suggest"]:
        paths, unique = scenarios[name]
        before = [cpu_seconds(p) for p in (product, edge, postmaster)]
        measured = run_wrk(
            args.base, paths, duration=args.duration, connections=8, threads=1, rate=args.rate, unique=unique
        )
        spent = [cpu_seconds(p) - b for p, b in zip((product, edge, postmaster), before, strict=True)]
        per = [1000 * s / measured["requests"] for s in spent]
        cells = [name, f"{measured['rate']:,.0f}", *(f"{ms:.2f}" for ms in (*per, sum(per)))]
        print(f"| {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
