"""CPU per cached product detail through the edge, for two or more trees taking turns (A, B, A, B...).

    SHOP_TEST_NS=perf15 SHOP_TEST_REDIS_DB=2 SHOP_TEST_PORT_OFFSET=21000 \
        .venv/bin/python perf/detail_ab.py /tmp/before,. --rounds 4

Each tree is a folder holding the repository's packages (`git worktree add` or `git archive HEAD | tar -x
-C /tmp/before`; `.` is this one, with its compiled edge once `make native` ran). In the test corner
the variables name (tests/conftest.py), the databases are migrated and seeded and svc_inventory runs
once for all; then each tree gets its own svc_product (one granian worker) and its own edge (one
worker) in front of it, all sharing that PostgreSQL, Redis and svc_inventory. The trees take turns
under `wrk -t1 -c32` on `GET /api/products/{id}` over `--hot` demo products (warmed: every answer a
cache hit), so load from elsewhere on the machine falls on them alike. Per run: requests/s, p99, and
the CPU time (user + system, psutil, every process of the tree's edge and svc_product) per request.
The medians per tree are what to compare; the throughput of a shared machine is not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit import settings  # noqa: E402
from perf.catalog import run_wrk  # noqa: E402
from perf.trees import start, stop  # noqa: E402
from tests import conftest  # noqa: E402  (sets the environment of the namespace)
from tests.stack import OPEN_LIMITS  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {within} s")


@dataclass
class Tree:
    path: Path
    edge_url: str
    processes: dict[str, psutil.Process]
    # svc_inventory serves every tree, each in its own turn: its CPU in a tree's turn is that tree's.
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"edge": [], "product": [], "inventory": []})
    rates: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)

    def cpu_seconds(self) -> dict[str, float]:
        spent = {}
        for name, process in self.processes.items():
            total = 0.0
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = each.cpu_times()
                    total += times.user + times.system
            spent[name] = total
        return spent


@contextlib.contextmanager
def trees(paths: list[Path]) -> Iterator[list[Tree]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        inventory = start("svc_inventory", ROOT, OPEN_LIMITS)
        started.append(inventory)
        wait_ready(f"{settings.service_url('inventory')}/health/ready")
        found = []
        for path in paths:
            product_port, edge_port = free_port(), free_port()
            product_url = f"http://127.0.0.1:{product_port}"
            product = start("svc_product", path, {**OPEN_LIMITS, "PRODUCT_PORT": str(product_port)})
            edge = start(
                "edge",
                path,
                {
                    **OPEN_LIMITS,
                    # A run sends millions of requests from one address: the tests' hourly million is
                    # spent within two runs (then every answer is a 429).
                    "RATE_LIMIT_IP_PER_HOUR": "1000000000",
                    "EDGE_PORT": str(edge_port),
                    "EDGE_ADMIN_PORT": str(free_port()),
                    "EDGE_WORKERS": "1",
                    "EDGE_CLUSTER_PRODUCT": product_url,
                    "EDGE_DOCS": "false",
                },
            )
            started += [product, edge]
            wait_ready(f"{product_url}/health/ready")
            edge_url = f"http://127.0.0.1:{edge_port}"
            wait_ready(f"{edge_url}/health/live")
            processes = {
                "edge": psutil.Process(edge.pid),
                "product": psutil.Process(product.pid),
                "inventory": psutil.Process(inventory.pid),
            }
            found.append(Tree(path, edge_url, processes))
        yield found
    finally:
        stop(started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", help="comma-separated trees, e.g. /tmp/before,.")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--hot", type=int, default=200)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--header", action="append", default=[], help="e.g. 'Accept-Encoding: gzip'")
    parser.add_argument("--no-seed", action="store_true", help="the corner is already migrated and seeded")
    args = parser.parse_args()
    if not args.no_seed:
        for step in ("shop.migrate", "shop.seed"):
            subprocess.run([sys.executable, "-m", step], cwd=ROOT, check=True, capture_output=True)
    with trees([Path(p).resolve() for p in args.trees.split(",")]) as found:
        with httpx.Client(base_url=found[0].edge_url) as client:
            pages = range(1, (args.hot + 99) // 100 + 1)
            listed = [client.get("/api/products", params={"page": n, "pageSize": 100}).json() for n in pages]
        details = [f"/api/products/{item['id']}" for page in listed for item in page["items"]][: args.hot]
        for tree in found:
            with httpx.Client(base_url=tree.edge_url) as client:
                for path in details:
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        for _ in range(args.rounds):
            for tree in found:
                before = tree.cpu_seconds()
                result = run_wrk(
                    tree.edge_url,
                    details,
                    duration=args.seconds,
                    connections=args.connections,
                    threads=1,
                    rate=None,
                    unique=False,
                    headers=args.header,
                )
                after = tree.cpu_seconds()
                for name in tree.cpu:
                    tree.cpu[name].append((after[name] - before[name]) / result["requests"] * 1e6)
                tree.rates.append(result["rate"])
                tree.p99.append(result["p99"])
                print(
                    f"{tree.path.name or tree.path}: {result['rate']:,.0f} req/s, p99 {result['p99']:.1f} ms,"
                    f" errors {result['errors']:.0f}, µs/request edge {tree.cpu['edge'][-1]:.1f}"
                    f" product {tree.cpu['product'][-1]:.1f} inventory {tree.cpu['inventory'][-1]:.1f}",
                    flush=True,
                )
    print(
        "\n| tree | req/s (median) | p99 ms (median) | edge µs/req | svc_product µs/req"
        " | svc_inventory µs/req | sum |"
    )
    print("|---|---|---|---|---|---|---|")
    for tree in found:
        edge, product, inventory = (
            statistics.median(tree.cpu[name]) for name in ("edge", "product", "inventory")
        )
        print(
            f"| {tree.path} | {statistics.median(tree.rates):,.0f} | {statistics.median(tree.p99):.1f} |"
            f" {edge:.1f} | {product:.1f} | {inventory:.1f} | {edge + product + inventory:.1f} |"
        )
    print(f"\nload average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")


if __name__ == "__main__":
    asyncio.run(conftest.empty_corner())
    main()
