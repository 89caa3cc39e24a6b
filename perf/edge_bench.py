"""The edge beside HAProxy 2.6 doing the same job on the same machine, in one command.

    .venv/bin/python perf/edge_bench.py              # about 3 minutes with the defaults
    .venv/bin/python perf/edge_bench.py --quick      # one short round, to see that it runs

It starts a trivial JSON upstream on granian (`perf/edge_upstream.py`), the edge (`python -m edge`,
every duty on: JWT, rate limit through Redis, request id, traceparent, metrics) and HAProxy with
`perf/edge_haproxy.cfg` (HS256 `jwt_verify` of the same token, per-user request-rate tracking, the
identity headers, a request id, a traceparent, X-Forwarded-For), HAProxy with as many threads as the
edge has worker processes. Then, alternating the two in every round:

1. saturation: `wrk` with the same connections and duration -> requests/s, p50, p99;
2. a fixed moderate rate (`hey -q`): the CPU time each proxy spent per request (utime + stime of all
   its processes, from /proc) and its p50/p99, and the upstream called directly at the same rate, so
   the edge's added latency is its p50 minus the direct p50;
3. one connection, back to back (`wrk -c1`): the added latency again, free of queueing, to the
   microsecond.

It prints medians over the rounds and the edge/HAProxy ratios. The edge runs its compiled build
(`make native` first; with `EDGE_NATIVE=off` it runs the interpreted source instead). It installs
nothing: it needs `haproxy` (2.6), `wrk` and `hey` on the PATH (Debian: `apt-get install haproxy wrk
hey`) and a Redis for the edge's shared rate limit (REDIS_URL; without one the edge runs its
per-process fallback).
The machine's load average is printed before and after: other work on the cores skews everything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kit import settings  # noqa: E402

CLUSTERS = ("AUTH", "USER", "ORDER", "PRODUCT", "PAYMENT", "INVENTORY", "DISCOUNT", "NOTIFY")
# A protected route: every request needs the token checked, then is counted against the user's limit.
PATH = "/api/orders"
# High enough never to refuse during a run, yet tracked per user on every request by both proxies.
BENCH_USER_LIMIT = 1_000_000_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Samples:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


def token_for() -> str:
    """A valid access token for the bench user, signed as svc_auth would."""
    edge_settings = settings.load("edge")
    now = int(time.time())
    claims = {
        "sub": "3f1c1e9a-7f38-4a53-9a49-0d6c1f5f2b11",
        "email": "user@shop.local",
        "name": "Bench User",
        "roles": ["User"],
        "permissions": [],
        "iat": now,
        "exp": now + 3 * 3600,
        "iss": edge_settings.jwt_issuer,
        "aud": edge_settings.jwt_audience,
    }
    return jwt.encode(claims, edge_settings.jwt_secret.reveal(), algorithm="HS256")


def haproxy_env(threads: int, port: int, upstream_port: int) -> dict[str, str]:
    """The variables perf/edge_haproxy.cfg reads."""
    edge_settings = settings.load("edge")
    return {
        **os.environ,
        "BENCH_THREADS": str(threads),
        "BENCH_HAPROXY_PORT": str(port),
        "BENCH_UPSTREAM_PORT": str(upstream_port),
        "BENCH_JWT_SECRET": edge_settings.jwt_secret.reveal(),
        "BENCH_JWT_ISSUER": edge_settings.jwt_issuer,
        "BENCH_JWT_AUDIENCE": edge_settings.jwt_audience,
        "BENCH_USER_LIMIT": str(BENCH_USER_LIMIT),
    }


def granian_command(port: int) -> list[str]:
    """The trivial upstream, one granian worker."""
    granian = str(Path(sys.executable).with_name("granian"))
    return [granian, "--interface", "rsgi", "--port", str(port), "--no-ws", "perf.edge_upstream:app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_tools() -> None:
    missing = [tool for tool in ("haproxy", "wrk", "hey") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: install with `apt-get install {' '.join(missing)}`")
    version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout
    if not re.search(r"version 2\.(6|[7-9])|version 3\.", version):
        print(f"warning: the comparison is meant against HAProxy 2.6, found: {version.splitlines()[0]}")


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (the edge's forked workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes, all their threads included."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_ready(url: str, headers: dict[str, str], process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    sys.exit(f"{name} not answering 200 at {url}")


def seconds(text: str) -> float:
    """wrk's '2.10ms' / '1.02s' / '850.00us' as seconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"cannot read a duration from {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        sys.exit(f"no {pattern!r} in:\n{text}")
    return match.group(1)


def run_wrk(url: str, token: str, connections: int, duration: float) -> tuple[float, float, float]:
    auth = f"Authorization: Bearer {token}"
    out = output(["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-H", auth, url])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        sys.exit(f"{url} answered {non_2xx.group(1)} errors under wrk:\n{out}")
    rps = float(found(r"Requests/sec:\s+([\d.]+)", out))
    # The latency distribution's lines, not the `99.99%` that ends the stdev line above them.
    return rps, seconds(found(r"(?m)^\s+50%\s+(\S+)", out)), seconds(found(r"(?m)^\s+99%\s+(\S+)", out))


def run_hey(url: str, token: str, rate: int, workers: int, duration: float) -> tuple[int, float, float]:
    auth = f"Authorization: Bearer {token}"
    out = output(
        ["hey", "-z", f"{duration:g}s", "-c", str(workers), "-q", str(rate / workers), "-H", auth, url]
    )
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    if set(codes) != {"200"}:
        sys.exit(f"{url} answered {codes} under hey:\n{out}")
    p50 = float(found(r"50%+ in ([\d.]+) secs", out))
    p99 = float(found(r"99%+ in ([\d.]+) secs", out))
    return int(codes["200"]), p50, p99


@contextlib.contextmanager
def started(name: str, command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = open(f"/tmp/edge_bench_{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="edge processes = HAProxy threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk/hey run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, medians reported (3)")
    parser.add_argument("--rate", type=int, default=6000, help="fixed total rate for hey, req/s (6000)")
    parser.add_argument("--rate-clients", type=int, default=30, help="hey connections at the fixed rate")
    parser.add_argument("--quick", action="store_true", help="one round of 3 s runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3
    need_tools()

    token = token_for()
    upstream_port, edge_port, haproxy_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    base = {**os.environ, "LOG_LEVEL": "WARNING"}
    edge_env = {
        **base,
        "EDGE_PORT": str(edge_port),
        "EDGE_WORKERS": str(args.workers),
        # Not 9010: a `make run` on the same machine has it.
        "EDGE_ADMIN_PORT": "0",
        # Compiled, as `make run` runs it (refusing a missing or stale build); EDGE_NATIVE=off to
        # measure the interpreted source instead.
        "EDGE_NATIVE": os.environ.get("EDGE_NATIVE", "require"),
        "RATE_LIMIT_USER_PER_MINUTE": str(BENCH_USER_LIMIT),
        "RATE_LIMIT_IP_PER_HOUR": str(BENCH_USER_LIMIT),
        **{f"EDGE_CLUSTER_{name}": upstream_url for name in CLUSTERS},
    }
    print(f"load average before: {load_average()}  (2 cores expected: {os.cpu_count()} found)")
    auth = {"Authorization": f"Bearer {token}"}
    with (
        started("upstream", granian_command(upstream_port), base) as upstream,
        started("edge", [sys.executable, "-m", "edge"], edge_env) as edge,
        started(
            "haproxy",
            ["haproxy", "-db", "-f", str(ROOT / "perf/edge_haproxy.cfg")],
            haproxy_env(args.workers, haproxy_port, upstream_port),
        ) as haproxy,
    ):
        targets = {
            "edge": (f"http://127.0.0.1:{edge_port}{PATH}", edge),
            "haproxy": (f"http://127.0.0.1:{haproxy_port}{PATH}", haproxy),
        }
        wait_ready(upstream_url + PATH, auth, upstream, "upstream")
        for name, (url, process) in targets.items():
            wait_ready(url, auth, process, name)
            run_wrk(url, token, args.connections, 2)  # warm-up: pools, caches, JIT-less but warm CPU caches

        saturation = {name: Samples() for name in targets}
        fixed = {name: Samples() for name in (*targets, "direct")}
        single = {name: Samples() for name in (*targets, "direct")}
        for round_number in range(args.rounds):
            order = list(targets) if round_number % 2 == 0 else list(reversed(targets))
            for name in order:
                rps, p50, p99 = run_wrk(targets[name][0], token, args.connections, args.duration)
                saturation[name].rps.append(rps)
                saturation[name].p50.append(p50)
                saturation[name].p99.append(p99)
                print(f"round {round_number + 1} wrk  {name:8} {rps:9.0f} req/s  {latency(p50, p99)}")
            for name in ["direct", *order]:
                url, process = (upstream_url + PATH, upstream) if name == "direct" else targets[name]
                pids = process_tree(process.pid)
                before = cpu_seconds(pids)
                count, p50, p99 = run_hey(url, token, args.rate, args.rate_clients, args.duration)
                spent = cpu_seconds(pids) - before
                sample = fixed[name]
                sample.rps.append(count / args.duration)
                sample.p50.append(p50)
                sample.p99.append(p99)
                sample.cpu_us.append(spent / count * 1e6)
                print(
                    f"round {round_number + 1} hey  {name:8} {count / args.duration:9.0f} req/s  "
                    f"p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms  cpu {spent / count * 1e6:6.1f} us/req"
                )
            # One connection, back to back: the time a request spends in the proxy, without queueing.
            for name in ["direct", *order]:
                url = upstream_url + PATH if name == "direct" else targets[name][0]
                rps, p50, p99 = run_wrk(url, token, 1, min(args.duration, 5))
                single[name].p50.append(p50)
                single[name].p99.append(p99)
                print(f"round {round_number + 1} wrk1 {name:8} {rps:9.0f} req/s  {latency(p50, p99)}")
    print(f"load average after: {load_average()}")
    report(saturation, fixed, single, args)


def latency(p50: float, p99: float) -> str:
    return f"p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms"


def report(
    saturation: dict[str, Samples],
    fixed: dict[str, Samples],
    single: dict[str, Samples],
    args: argparse.Namespace,
) -> None:
    med = statistics.median
    edge, haproxy = saturation["edge"], saturation["haproxy"]
    print(f"\nmedians of {args.rounds} rounds; {args.workers} edge workers / HAProxy threads")
    print(f"saturation (wrk -t1 -c{args.connections} -d{args.duration:g}s):")
    for name, s in saturation.items():
        print(f"  {name:8} {med(s.rps):9.0f} req/s  {latency(med(s.p50), med(s.p99))}")
    print(
        f"  edge/haproxy: throughput {med(edge.rps) / med(haproxy.rps):.2f}x (target >= 1.0), "
        f"p99 {med(edge.p99) / med(haproxy.p99):.2f}x (target <= 1.0)"
    )
    print(f"fixed rate (hey -c{args.rate_clients} at {args.rate} req/s, {args.duration:g}s):")
    for name, s in fixed.items():
        cpu = f"  cpu {med(s.cpu_us):6.1f} us/req" if name != "direct" else ""
        print(f"  {name:8} p50 {med(s.p50) * 1e3:6.2f} ms  p99 {med(s.p99) * 1e3:6.2f} ms{cpu}")
    print(
        f"  edge/haproxy: cpu per request {med(fixed['edge'].cpu_us) / med(fixed['haproxy'].cpu_us):.2f}x "
        f"(target <= 1.1), p99 {med(fixed['edge'].p99) / med(fixed['haproxy'].p99):.2f}x"
    )
    for name in ("edge", "haproxy"):
        added = (med(fixed[name].p50) - med(fixed["direct"].p50)) * 1e3
        print(f"  {name} added p50 latency over direct: {added:.2f} ms (hey resolution 0.1 ms)")
    print("one connection, back to back (wrk -t1 -c1):")
    for name, s in single.items():
        print(f"  {name:8} {latency(med(s.p50), med(s.p99))}")
    for name in ("edge", "haproxy"):
        added = (med(single[name].p50) - med(single["direct"].p50)) * 1e3
        target = " (target <= 0.3)" if name == "edge" else ""
        print(f"  {name} added p50 latency over direct: {added:.3f} ms{target}")


if __name__ == "__main__":
    main()
