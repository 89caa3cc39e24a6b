"""Active health checks: every destination's `/health/ready`, polled by each worker.

A destination that fails `UNHEALTHY_AFTER` checks in a row (no answer within the timeout, or anything
but 200) is taken out of balancing until it passes one again. Each worker checks on its own: a check is
one short request every few seconds, cheaper than sharing verdicts between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from edge.upstream import Pool

log = logging.getLogger(__name__)

UNHEALTHY_AFTER = 2
PATH = b"/health/ready"


async def probe(pool: Pool, within: float) -> bool:
    """True when the destination answers its readiness check with 200 in time."""
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(pool.host, pool.port)
            writer.write(
                b"GET " + PATH + b" HTTP/1.1\r\nhost: " + pool.authority + b"\r\nconnection: close\r\n\r\n"
            )
            status_line = await reader.readline()
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.split(b" ", 2)
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1] == b"200"


class HealthChecks:
    def __init__(self, pools: Iterable[Pool], interval: float, timeout: float) -> None:
        self._pools = list(pools)
        self._interval = interval
        self._timeout = min(timeout, interval)
        self._misses = {pool: 0 for pool in self._pools}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(self._interval)

    async def check_all(self) -> None:
        results = await asyncio.gather(*(probe(pool, self._timeout) for pool in self._pools))
        for pool, ready in zip(self._pools, results, strict=True):
            if ready:
                self._misses[pool] = 0
                if not pool.healthy:
                    log.warning("upstream %s is ready again", pool.url)
                pool.healthy = True
                continue
            self._misses[pool] += 1
            if self._misses[pool] >= UNHEALTHY_AFTER and pool.healthy:
                log.warning(
                    "upstream %s failed %d readiness checks; out of rotation", pool.url, UNHEALTHY_AFTER
                )
                pool.healthy = False
