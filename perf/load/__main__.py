"""`make load`: an open-loop load run against a running stack, written up as a report.

    .venv/bin/python -m perf.load                                   # the smoke profile, the whole mix
    .venv/bin/python -m perf.load --profile standard --mix catalog
    .venv/bin/python -m perf.load --profile peak --scale 1.5 --duration 60
    .venv/bin/python -m perf.load --rate buyer=10 --rate browser=300

1. The stack must answer (`make run`, with the edge's limits raised: perf/README.md says how).
2. The buyer pool is made to exist (perf/load/buyers.py, straight in the stack's databases).
3. locust runs headless, open loop (perf/load/users.py), with a progress line every 5 s, while the CPU
   of every part of the stack is read from /proc before and after.
4. `perf/reports/<UTC time>/` gets the CSVs, locust's HTML report, `report.md` and its plots.
5. Exit status 1 when a design target is missed or errors exceed `--max-errors`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from kit import settings
from perf.load import buyers
from perf.load.cpu import Reading, busy_over_time, cpu_by_part, spent_during
from perf.load.profiles import MIXES, PROFILES, Profile, format_rates, parse_rates
from perf.load.report import Run, build, read_samples, write_cpu, write_machine

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "perf" / "reports"
CLASSES = {"browser": "BrowserArrivals", "buyer": "BuyerArrivals", "staff": "StaffArrivals"}
SPARE_SECONDS = 60  # locust's own deadline past the schedule: set-up (logins) and draining the answers
CPU_READING_SECONDS = 1.0


def _arguments() -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default=env("LOAD_PROFILE", "smoke"))
    parser.add_argument("--mix", choices=sorted(MIXES), default=env("LOAD_MIX", "mix"))
    parser.add_argument(
        "--rate", action="append", default=[env("LOAD_RATE", "")], metavar="SCENARIO=N",
        help="arrivals/s of one scenario (browser, buyer, staff), over the profile's; LOAD_RATE='a=1,b=2'",
    )  # fmt: skip
    parser.add_argument("--scale", type=float, default=float(env("LOAD_SCALE", "1")), help="times every rate")
    parser.add_argument("--duration", type=float, default=float(env("LOAD_DURATION", "0")) or None)
    parser.add_argument("--host", default=env("LOAD_HOST", settings.service_url("edge")))
    parser.add_argument("--out", type=Path, help="the report's directory (default perf/reports/<time>)")
    parser.add_argument(
        "--max-errors", type=float, default=float(env("LOAD_MAX_ERRORS", "0.01")),
        help="share of requests allowed to fail (default 0.01)",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="fail on our own targets too")
    parser.add_argument(
        "--warmup", type=float, default=float(env("LOAD_WARMUP", "3")),
        help="first seconds plotted but left out of the figures and the verdict (default 3)",
    )  # fmt: skip
    return parser.parse_args()


def _profile(args: argparse.Namespace) -> Profile:
    overrides: dict[str, float] = {}
    for text in args.rate:
        overrides |= parse_rates(text)
    profile = PROFILES[args.profile].with_rates(overrides).with_mix(args.mix).scaled(args.scale)
    return Profile(profile.name, args.duration or profile.duration, profile.rates)


def _check_stack(host: str) -> None:
    try:
        ready = httpx.get(f"{host}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        ready = False
    if not ready:
        raise SystemExit(f"no stack answers at {host}: start it first (make run; perf/README.md)")


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return found.stdout.strip()


def run(profile: Profile, mix: str, host: str, out: Path, warmup: float) -> int:
    """Run locust on `profile` against `host`, writing the raw data into `out`; locust's exit status."""
    out.mkdir(parents=True, exist_ok=True)
    rates = {k: v for k, v in profile.rates.items() if v > 0}
    classes = [CLASSES[name] for name in rates]
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "perf" / "locustfile.py"), "--headless",
        "--host", host, "--users", str(len(classes)), "--spawn-rate", str(len(classes)),
        "--run-time", f"{profile.duration + SPARE_SECONDS:.0f}s", "--stop-timeout", "5",
        "--csv", str(out / "locust"), "--csv-full-history", "--html", str(out / "locust.html"),
        "--only-summary", "--loglevel", "WARNING",
        "--rates", format_rates(rates), "--arrival-seconds", f"{profile.duration:g}",
        "--buyers", str(profile.buyers), "--samples-csv", str(out / "requests.csv"), *classes,
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # set by the unit tests' process; locust needs gevent
    edge_port = urlsplit(host).port or 80
    load_before = os.getloadavg()[0]
    readings: list[Reading] = []
    with subprocess.Popen(command, cwd=ROOT, env=environment) as locust:
        generator = {locust.pid: "load generator (locust)"}
        # Read every second, so the CPU counted is that of the arrivals' window only (not locust's
        # start-up and logins): the samples' first and last send times pick the readings.
        while locust.poll() is None:
            readings.append((time.time(), cpu_by_part(edge_port, generator)))
            time.sleep(CPU_READING_SECONDS)
        status = locust.returncode
    sent = [s.sent for s in read_samples(out / "requests.csv")] if (out / "requests.csv").exists() else []
    if sent and readings:
        write_cpu(out / "cpu.csv", spent_during(readings, min(sent), max(sent)))
        write_machine(out / "machine.csv", busy_over_time(readings))
    record = Run(
        profile.name, mix, rates, profile.duration, host, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        (load_before, os.getloadavg()[0]), _commit(), warmup,
    )  # fmt: skip
    (out / "run.json").write_text(json.dumps(asdict(record), indent=2))
    return status


def main() -> None:
    args = _arguments()
    profile = _profile(args)
    _check_stack(args.host)
    asyncio.run(buyers.prepare(profile.buyers))
    out = args.out or REPORTS / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    print(f"load run {profile.name} ({args.mix}): {format_rates(profile.rates)} for {profile.duration:g} s")
    status = run(profile, args.mix, args.host, out, args.warmup)
    if not (out / "requests.csv").exists():
        raise SystemExit(f"locust ended with {status} before recording anything")
    summary, misses = build(out, args.max_errors, args.strict)
    print(
        f"\n{summary.requests:,} requests, {summary.rate:,.1f} req/s, {summary.errors} errors;"
        f" report: {out / 'report.md'}"
    )
    for e in summary.endpoints:
        print(f"  {e.name:42} {e.count:7,}  p50 {e.p50:8.1f}  p99 {e.p99:8.1f} ms  errors {e.errors}")
    if misses:
        print("FAILED:\n  " + "\n  ".join(misses))
        raise SystemExit(1)
    print("PASSED")


if __name__ == "__main__":
    main()
