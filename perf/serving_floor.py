"""What one cached read costs at each layer of a service, on granian as kit.serve runs it.

    .venv/bin/python perf/serving_floor.py --rounds 3      # Redis db 9, port 24999 unless told

Each layer is served in turn (one granian worker, uvloop) and driven by `wrk -t1 -c32` for a few
seconds; printed: the CPU time (user + system, the server's processes) per request, medians of the
rounds. The layers add, in order: a bare ASGI app answering a 1.5 kB JSON body; a Starlette route
answering it; `kit.metrics.Observe` around it; the body read from Redis through `kit.cache` (a hit).
svc_product's cached detail does what the last one does, plus its own path (versioned lookup, stock
memo, representation): `perf/detail_ab.py` gives its figure, to compare in the same minutes (this
machine's speed moves by half within an hour; perf/README.md "Where issue 15 stands").
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit.cache import Cache, connect  # noqa: E402
from kit.metrics import Observe  # noqa: E402

LAYERS = ("asgi", "starlette", "observe", "redis")
BODY = b'{"id":"x","name":"' + b"a" * 1500 + b'"}'
_HEAD = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _HEAD})
    await send({"type": "http.response.body", "body": BODY})


def layer_app(layer: str, redis_url: str) -> ASGIApp:
    if layer == "asgi":
        return bare
    cache = Cache(connect(redis_url), "floor")

    async def load() -> bytes:
        return BODY

    async def answer(request: Request) -> Response:
        body = await cache.get_or_load("floor:detail", 3600, load) if layer == "redis" else BODY
        return Response(body, media_type="application/json")

    observed = [Middleware(Observe)] if layer in ("observe", "redis") else []
    return Starlette(routes=[Route("/", answer)], middleware=observed)


def cpu_seconds(process: psutil.Process) -> float:
    return sum(sum(each.cpu_times()[:2]) for each in [process, *process.children(recursive=True)])


def measure(layer: str, port: int, seconds: int) -> float:
    """µs of the server's CPU per request for one layer."""
    env = {**os.environ, "FLOOR_LAYER": layer, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", f"from perf.serving_floor import serve; serve({port})"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):  # up when wrk gets answers
            if (
                "requests in"
                in subprocess.run(["wrk", "-t1", "-c1", "-d1s", url], capture_output=True, text=True).stdout
            ):
                break
            time.sleep(0.1)
        process = psutil.Process(server.pid)
        before = cpu_seconds(process)
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{seconds}s", url], capture_output=True, text=True
        ).stdout
        spent = cpu_seconds(process) - before
        found = re.search(r"(\d+) requests in", out)
        if found is None or "Non-2xx" in out:
            raise RuntimeError(f"{layer}: {out}")
        return spent / int(found.group(1)) * 1e6
    finally:
        server.terminate()
        server.wait()


def serve(port: int) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        "perf.serving_floor:app", port=port, interface=Interfaces.ASGI, loop=Loops.uvloop, backlog=2048
    ).serve()


app = (
    layer_app(os.environ["FLOOR_LAYER"], os.environ["FLOOR_REDIS_URL"])
    if "FLOOR_LAYER" in os.environ
    else None
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--port", type=int, default=24999)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    os.environ["FLOOR_REDIS_URL"] = args.redis
    spent: dict[str, list[float]] = {layer: [] for layer in LAYERS}
    for _ in range(args.rounds):
        for layer in LAYERS:
            spent[layer].append(measure(layer, args.port, args.seconds))
            print(f"{layer}: {spent[layer][-1]:.1f} µs", flush=True)
    print("\n| layer | µs of CPU per request (median) |\n|---|---|")
    for layer, figures in spent.items():
        print(f"| {layer} | {statistics.median(figures):.1f} |")


if __name__ == "__main__":
    main()
