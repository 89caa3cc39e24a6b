"""CPU per created order of two or more trees of the services a change touches, taking turns (A, B, A, B).

    SHOP_TEST_NS=perf15 SHOP_TEST_REDIS_DB=2 SHOP_TEST_PORT_OFFSET=21000 \
        .venv/bin/python perf/checkout_ab.py /tmp/before,. --swap order,inventory --rounds 3

The whole stack runs once in the test corner the variables name (tests/stack.py, as the end-to-end tests
start it; the corner emptied first, `tests.conftest.empty_corner`), except the `--swap` services: those
are started from one tree at a time (a folder holding the repository's packages, e.g. `git archive HEAD
| tar -x -C /tmp/before` plus the generated stubs in protos/; `.` is this one). For each tree in turn
the swapped services start, a few seconds of checkouts warm them up, then `--concurrency` buyers check
out as fast as they can for `--seconds` (perf/checkout_bench.py's saturation phase; the first
`--discard` rounds, while the stack settles, are not counted) while the CPU every part of the stack
spends is read from /proc (perf/load/cpu.py); then they stop and the next tree's start. Printed per
tree: the medians of checkouts/s, p99 and ms of CPU per created order by part. Throughput on a shared
machine measures the machine; the CPU per order is the figure to compare.

`--projected`: once a tree's svc_order has created its projection of the catalog (svc_order.projection),
every demo product is written there before the rounds, as in a shop running for a while (each product
projected from its events or its first sale); without it, a tree that projects lazily spends the first
rounds reading the catalog once per product.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit.supervise import read_procfile  # noqa: E402
from perf.checkout_bench import Edge, Shop, Tally, analyze, fill_projection, measured, saturation  # noqa: E402
from perf.load import buyers, pool  # noqa: E402
from perf.load.cpu import MACHINE  # noqa: E402
from perf.trees import start, stop  # noqa: E402
from tests import conftest  # noqa: E402  (sets the environment of the namespace)
from tests.stack import OPEN_LIMITS, PROCFILE, Stack, running_stack  # noqa: E402

TOTAL = "stack total"
NOT_THE_STACK = ("other", MACHINE, "bench client")
LIMITS = {**OPEN_LIMITS, "RATE_LIMIT_USER_PER_MINUTE": "100000000", "RATE_LIMIT_IP_PER_HOUR": "1000000000"}


def start_swapped(stack: Stack, tree: Path, names: list[str], log: Path) -> list[subprocess.Popen[bytes]]:
    started = [start(f"svc_{name}", tree, stack.env, log) for name in names]
    for name in names:
        stack.wait_ready(name, within=60)
    return started


async def pool_tokens(count: int, auth_url: str) -> list[str]:
    """Access tokens of the load suite's buyer pool accounts 1..`count` (perf/load/buyers.py: made
    straight in the databases, no mail to wait for), logged in straight at svc_auth."""
    await buyers.prepare(count)
    async with httpx.AsyncClient(base_url=auth_url, timeout=60) as auth:
        tokens = []
        for number in range(1, count + 1):
            login = await auth.post(
                "/api/auth/login", json={"email": pool.email(number), "password": pool.PASSWORD}
            )
            login.raise_for_status()
            tokens.append(str(login.json()["accessToken"]))
        return tokens


async def one_run(
    args: argparse.Namespace, edge_url: str, tokens: list[str]
) -> tuple[Tally, float, dict[str, float]]:
    """Warm up, then saturation for `args.seconds`: what it achieved and the CPU it cost by part."""
    users = [b"authorization: Bearer %s\r\ncontent-type: application/json\r\n" % t.encode() for t in tokens]
    shop = Shop(Edge(edge_url), args.products, args.lines)
    try:
        await saturation(shop, users, min(8, len(users)), 3.0)
        return await measured(lambda: saturation(shop, users, args.concurrency, args.seconds), shop.edge.port)
    finally:
        await shop.edge.client.close()


async def run(args: argparse.Namespace, stack: Stack, trees: list[Path], swap: list[str], logs: Path) -> None:
    tokens = None
    projected = not args.projected  # nothing to fill unless asked
    edge_url = stack.url("edge")
    figures: dict[Path, dict[str, list[float]]] = {tree: defaultdict(list) for tree in trees}
    for number in range(args.discard + args.rounds):
        for tree in trees:
            processes = start_swapped(stack, tree, swap, logs / "swapped.log")
            try:
                if tokens is None:
                    tokens = await pool_tokens(args.users, stack.url("auth"))
                if not projected:
                    projected = await fill_projection(stack.env, stack.url("product"), args.products)
                await analyze(stack.env)
                tally, elapsed, cpu = await one_run(args, edge_url, tokens)
            finally:
                stop(processes)
            orders = max(tally.statuses["checkout 201"], 1)
            if number < args.discard:
                print(f"{tree.name or tree}: {orders / elapsed:.0f} orders/s (warm-up round, not counted)")
                continue
            ordered = sorted(tally.latencies["checkout"])
            row = figures[tree]
            row["orders/s"].append(orders / elapsed)
            row["p99 ms"].append(ordered[int(0.99 * (len(ordered) - 1))] * 1000 if ordered else 0.0)
            for part, seconds in cpu.items():
                row[part].append(seconds * 1000 / orders)
            stack_ms = sum(v for k, v in cpu.items() if k not in NOT_THE_STACK) * 1000
            row[TOTAL].append(stack_ms / orders)
            print(
                f"{tree.name or tree}: {orders / elapsed:.0f} orders/s, {stack_ms / orders:.2f} ms of CPU per"
                f" order (stack), answers {dict(tally.statuses)}",
                flush=True,
            )
    report(figures)


def report(figures: dict[Path, dict[str, list[float]]]) -> None:
    def median(row: dict[str, list[float]], part: str) -> float:
        return statistics.median(row.get(part) or [0.0])

    shown = ("orders/s", "p99 ms", TOTAL)
    parts = sorted(
        {p for row in figures.values() for p in row if p not in (*shown, MACHINE)},
        key=lambda p: -max(median(row, p) for row in figures.values()),
    )
    print("\nmedians; ms of CPU per created order by part")
    print("| part | " + " | ".join(str(tree) for tree in figures) + " |")
    print("|---|" + "---|" * len(figures))
    for part in (*shown, *parts):
        print(f"| {part} | " + " | ".join(f"{median(row, part):.2f}" for row in figures.values()) + " |")
    print(f"\nload average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", help="comma-separated trees, e.g. /tmp/before,.")
    parser.add_argument(
        "--swap", default="order", help="services started from each tree, e.g. order,inventory"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--discard", type=int, default=1, help="first rounds run but not counted")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--logs", type=Path, help="keep the stack's log in this folder")
    parser.add_argument(
        "--projected", action="store_true", help="every demo product in svc_order's projection first"
    )
    args = parser.parse_args()
    swap = args.swap.split(",")
    trees = [Path(tree).resolve() for tree in args.trees.split(",")]
    asyncio.run(conftest.empty_corner())
    with tempfile.TemporaryDirectory() as folder:
        procfile = Path(folder) / "Procfile"
        kept = [p for p in read_procfile(PROCFILE) if p.name not in swap]
        procfile.write_text("".join(f"{p.name}: {' '.join(p.command)}\n" for p in kept))
        logs = args.logs or Path(folder)
        logs.mkdir(parents=True, exist_ok=True)
        with running_stack({**os.environ, **LIMITS}, logs, procfile) as stack:
            asyncio.run(run(args, stack, trees, swap, logs))


if __name__ == "__main__":
    main()
