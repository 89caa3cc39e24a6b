"""Whether a process can do its work: its database, Redis and broker answer, and its own checks pass.

One verdict serves every reader: `GET /health/ready` (kit.app: 503 with the per-check body when one
fails, so Kubernetes and the edge take the process out of rotation) and the gRPC health service
(kit.grpc: NOT_SERVING meanwhile, for gRPC-aware balancers and probes). A service adds checks of its
own with `Service.ready_checks` (svc_inventory: not ready while its Redis is being rebuilt).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.app import Deps

Check = Callable[["Deps"], Awaitable[None]]
"""A readiness check: returns when ready, raises (anything) when not."""

TIMEOUT = 1.5
"""Seconds each check may take; a slower answer counts as down."""


async def _database(deps: Deps) -> None:
    async with deps.db.acquire(timeout=1.0) as conn:
        await conn.fetchval("SELECT 1")


async def _redis(deps: Deps) -> None:
    assert deps.redis is not None
    await deps.redis.ping()


async def _broker(deps: Deps) -> None:
    assert deps.broker is not None
    if not deps.broker.connected:
        raise ConnectionError("not connected")


def _checks(deps: Deps) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    if deps.db is not None:
        checks["database"] = _database
    if deps.redis is not None:
        checks["redis"] = _redis
    if deps.broker is not None:
        checks["broker"] = _broker
    checks.update(deps.ready_checks)
    return checks


async def report(deps: Deps) -> dict[str, str]:
    """{check: "ok" | "down: <why>"}, every check run at once."""
    checks = _checks(deps)
    results = await asyncio.gather(
        *(asyncio.wait_for(check(deps), TIMEOUT) for check in checks.values()), return_exceptions=True
    )
    return {
        name: "ok" if result is None else f"down: {type(result).__name__}"
        for name, result in zip(checks, results, strict=True)
    }


def healthy(found: Mapping[str, str]) -> bool:
    return all(state == "ok" for state in found.values())
