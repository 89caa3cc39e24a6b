"""A stopping service never hangs: a background task that ignores its cancellation, or a pool whose
connection is never given back, costs a bounded wait and a log line naming it, not a stuck process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
import pytest

from kit import app as kit_app
from kit import settings
from kit.app import Deps, Service, running
from kit.cancel import raise_if_cancelled
from tests.conftest import NAMESPACE, POSTGRES_URL

BOUND = 0.5


released = asyncio.Event()


async def stubborn(deps: Deps) -> None:
    """A job whose retry loop swallows its cancellation, as a library turning it into an error would;
    it ends only when the test lets it (the test's event loop must not keep it forever)."""
    while not released.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await released.wait()


def config() -> settings.Settings:
    return settings.load(
        "auth", {"AUTH_DATABASE_URL": f"{POSTGRES_URL}/stop_{NAMESPACE}", "SHOP_ENV": "test"}
    )


@pytest.fixture(autouse=True)
def short_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kit_app, "STOP_SECONDS", BOUND)


async def test_a_task_that_ignores_its_cancellation_delays_the_stop_by_the_bound_and_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service("auth", [], jobs=[stubborn], uses_redis=False, uses_broker=False)
    async with running(service, config()):
        await asyncio.sleep(0)  # the job has started
        began = time.monotonic()
    stopped_after = time.monotonic() - began
    released.set()
    assert stopped_after < BOUND + 2.0
    [record] = [r for r in caplog.records if r.getMessage() == "background task ignored its cancellation"]
    assert record.levelno == logging.ERROR
    assert record.__dict__["task"] == "stubborn"
    assert "stubborn" in record.__dict__["stack"]


async def test_a_connection_never_given_back_does_not_keep_the_pool_from_closing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service("auth", [], uses_redis=False, uses_broker=False)
    async with running(service, config()) as deps:
        held = await deps.db.acquire()  # a request that never finishes, say
        began = time.monotonic()
    assert time.monotonic() - began < BOUND + 2.0
    with pytest.raises(asyncpg.InterfaceError):  # terminated with the pool once the wait was over
        await held.fetchval("SELECT 1")
    assert any(r.__dict__.get("what") == "database pool" for r in caplog.records)


async def test_a_retry_loop_ends_when_its_cancellation_arrives_disguised_as_an_error() -> None:
    async def retrying() -> None:
        for _ in range(3):  # bounded, so that a failure of this test cannot hang the run
            try:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    raise ConnectionError("closed") from None  # what a library may make of it
            except ConnectionError:
                raise_if_cancelled()

    task = asyncio.create_task(retrying())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2.0)
    assert task in done and task.cancelled()
