"""CPU per cached read through kit.cache's lane: a plain GET, the versioned lookup (EVALSHA)
svc_product's fast path makes, and `Cache.cached` around it, one call at a time; then `Cache.cached`
32 at once, as a loaded service makes them.

    .venv/bin/python perf/cache_lane.py [redis://127.0.0.1:6379/9]

Process time (user + system) per call, best of 3 loops of 10,000 after a warm-up: what the process
spends, with the round trip's waiting left out. To compare two trees, run this file from each (copy
it into the other): it reaches the lane only through `Cache`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kit.cache import Cache, connect

VALUE = b"x" * 2000


async def per_call(call: Callable[[], Awaitable[object]], calls: int = 10_000) -> float:
    for _ in range(calls // 5):
        await call()
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(calls):
            await call()
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


def together(call: Callable[[], Awaitable[object]], width: int = 32) -> Callable[[], Awaitable[object]]:
    """`width` calls at once, counted as `width` calls."""

    async def calls() -> object:
        return await asyncio.gather(*(call() for _ in range(width)))

    return calls


async def main(url: str) -> None:
    redis = connect(url)
    cache = Cache(redis, "lane")
    await redis.set("perf:lane", VALUE)
    await redis.set("perf:lane:ns", b"5")
    await redis.set("perf:lane:ns:v5:detail", VALUE)
    reads: dict[str, Callable[[], Awaitable[object]]] = {
        "GET through the lane": lambda: cache._lane.execute("GET", "perf:lane"),  # type: ignore[union-attr]
        "versioned lookup (EVALSHA)": lambda: cache._versioned("perf:lane:ns", "detail"),
        "Cache.cached": lambda: cache.cached("detail", "perf:lane:ns"),
    }
    for name, call in reads.items():
        print(f"{name}: {await per_call(call):.1f} µs of CPU per call")
    batch = together(lambda: cache.cached("detail", "perf:lane:ns"))
    print(
        f"Cache.cached, 32 at once: {await per_call(batch, calls=10_000 // 32) / 32:.1f} µs of CPU per call"
    )
    await redis.aclose()


if __name__ == "__main__":
    # On uvloop, as the services run (kit.serve).
    uvloop.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/9"))
