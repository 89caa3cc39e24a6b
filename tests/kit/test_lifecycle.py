"""One lifecycle for every service: periodic work that survives its failures and stops cleanly, and what
a service opened closed in reverse order, even when a later opening failed, without waiting forever."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from prometheus_client import REGISTRY

from kit import lifecycle, settings
from kit.app import Deps, Resource, Service, running
from kit.lifecycle import Lifespan, every, keep_running
from tests.kit.conftest import KIT_DB
from tests.support import eventually


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "FIRST_PAUSE", 0.01)


def failures(job: str) -> float:
    return REGISTRY.get_sample_value("shop_job_failures_total", {"job": job}) or 0.0


def job_name() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


async def stopped(task: asyncio.Task[object]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_round_that_raises_is_logged_counted_and_the_work_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, rounds = job_name(), list[int]()

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) <= 2:
            raise RuntimeError(f"round {len(rounds)} broke")

    caplog.set_level(logging.INFO, "kit.lifecycle")
    task = asyncio.create_task(every(0.01, work, name=name))
    await eventually(lambda: asyncio.sleep(0, len(rounds) >= 5))
    await stopped(task)
    assert failures(name) == 2
    failed = [r for r in caplog.records if getattr(r, "job", None) == name and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in failed] == ["background job failed, retrying"] * 2
    assert [getattr(r, "error", None) for r in failed] == [
        "RuntimeError('round 1 broke')",
        "RuntimeError('round 2 broke')",
    ]
    assert failed[0].exc_info is not None  # not a dependency's outage: the traceback says where
    assert any(
        r.getMessage() == "background job recovered" and getattr(r, "job", None) == name
        for r in caplog.records
    )


async def test_the_pause_after_failures_doubles_up_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "MAX_PAUSE", 0.08)
    name, times = job_name(), []
    loop = asyncio.get_running_loop()

    async def work() -> None:
        times.append(loop.time())
        raise ConnectionError("down")

    task = asyncio.create_task(every(0.01, work, name=name))
    await eventually(lambda: asyncio.sleep(0, len(times) >= 7), within=5)
    await stopped(task)
    pauses = [later - earlier for earlier, later in itertools.pairwise(times)]
    # A sleep is never shorter than asked (a busy machine only makes it longer).
    assert all(
        p >= 0.99 * want for p, want in zip(pauses, [0.01, 0.02, 0.04, 0.08, 0.08, 0.08], strict=False)
    )
    assert max(pauses) < 1.0
    assert failures(name) >= 7


async def test_cancellation_at_shutdown_stops_the_work_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    name, started, finished = job_name(), asyncio.Event(), []

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a round in progress when the service stops
        finally:
            finished.append(True)

    task = asyncio.create_task(every(1.0, work, name=name))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and finished == [True]
    assert failures(name) == 0
    assert not [r for r in caplog.records if getattr(r, "job", None) == name]


async def test_a_wake_runs_the_next_round_at_once() -> None:
    wake, rounds = asyncio.Event(), []

    async def work() -> None:
        rounds.append(True)

    task = asyncio.create_task(every(3600, work, name=job_name(), wake=wake))
    await eventually(lambda: asyncio.sleep(0, len(rounds) == 1))
    wake.set()
    await eventually(lambda: asyncio.sleep(0, len(rounds) == 2), within=5)  # at once, not in an hour
    await stopped(task)


async def test_a_job_that_dies_or_ends_is_started_again() -> None:
    name, runs = job_name(), []

    async def job() -> None:
        runs.append(True)
        if len(runs) == 1:
            raise OSError("lost the server")
        if len(runs) == 2:
            return
        await asyncio.Event().wait()

    task = asyncio.create_task(keep_running(name, job))
    await eventually(lambda: asyncio.sleep(0, len(runs) == 3))
    await stopped(task)
    assert failures(name) == 2


class Opened:
    """What a test's openings and closings did, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @contextlib.asynccontextmanager
    async def resource(self, name: str, fails: bool = False) -> AsyncIterator[str]:
        if fails:
            raise ConnectionRefusedError(f"{name} refused")
        self.log.append(f"open {name}")
        try:
            yield name
        finally:
            self.log.append(f"close {name}")

    async def close(self, name: str) -> None:
        self.log.append(f"close {name}")


async def test_what_was_opened_is_closed_in_reverse_order_when_a_later_opening_fails() -> None:
    opened = Opened()
    with pytest.raises(ConnectionRefusedError):
        async with Lifespan() as life:
            assert await life.enter("a", opened.resource("a")) == "a"
            life.on_stop("b", lambda: opened.close("b"))
            await life.enter("c", opened.resource("c"))
            await life.enter("d", opened.resource("d", fails=True))
            opened.log.append("served")
    assert opened.log == ["open a", "open c", "close c", "close b", "close a"]


async def test_an_opening_that_hangs_fails_the_start_and_what_was_opened_closes() -> None:
    opened = Opened()
    with pytest.raises(TimeoutError, match=r"broker did not open within 0\.1 s"):
        async with Lifespan(start_seconds=0.1) as life:
            await life.enter("a", opened.resource("a"))
            await life.start("broker", asyncio.Event().wait())
    assert opened.log == ["open a", "close a"]


async def test_a_closing_that_hangs_is_left_behind_and_the_rest_still_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opened = Opened()
    async with Lifespan(stop_seconds=0.1) as life:
        life.on_stop("a", lambda: opened.close("a"))
        life.on_stop("stuck", asyncio.Event().wait)
        life.on_stop("broken", lambda: asyncio.sleep(0, 1 / 0))
    assert opened.log == ["close a"]
    assert {(r.getMessage(), getattr(r, "step", None)) for r in caplog.records} >= {
        ("not closed in time, left behind", "stuck"),
        ("closing failed", "broken"),
    }


async def test_background_jobs_stop_before_what_they_use_is_closed() -> None:
    opened = Opened()

    async def job() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            opened.log.append("job stopped")

    async with Lifespan() as life:
        await life.enter("pool", opened.resource("pool"))
        life.run([("job", job)])
        await asyncio.sleep(0)
    assert opened.log == ["open pool", "job stopped", "close pool"]


async def test_a_service_that_fails_to_start_closes_its_resources_and_its_pool(pool: asyncpg.Pool) -> None:
    opened, seen = Opened(), []

    @contextlib.asynccontextmanager
    async def clients(deps: Deps) -> AsyncIterator[str]:
        seen.append(deps.db)
        async with opened.resource("clients") as value:
            yield value

    clients_resource = Resource("clients", clients)
    engine = Resource("engine", lambda deps: opened.resource("engine", fails=True))
    config = settings.load("auth", {"AUTH_DATABASE_URL": KIT_DB, "SHOP_ENV": "test"})
    service = Service("auth", [], resources=[clients_resource], uses_redis=False, uses_broker=False)

    async with running(service, config) as deps:
        assert clients_resource.of(deps) == "clients"
    assert opened.log == ["open clients", "close clients"]

    failing = Service("auth", [], resources=[clients_resource, engine], uses_redis=False, uses_broker=False)
    with pytest.raises(ConnectionRefusedError):
        async with running(failing, config):
            pass
    assert opened.log[2:] == ["open clients", "close clients"]
    assert all(db.is_closing() for db in seen)


async def test_periodic_work_ends_when_its_cancellation_arrives_disguised_as_an_error() -> None:
    rounds = 0

    async def converts_its_cancellation() -> None:
        nonlocal rounds
        rounds += 1
        if rounds > 3:  # bounded, so that a failure of this test cannot keep the run waiting
            raise asyncio.CancelledError
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("closed") from None  # what a library may make of it

    task = asyncio.create_task(every(0.01, converts_its_cancellation, name=job_name()))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task], timeout=2.0)
    assert task.cancelled() and rounds == 1


async def test_a_job_that_ignores_its_cancellation_is_left_behind_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    name = job_name()
    async with Lifespan(stop_seconds=0.2) as life:
        life.run([(name, stubborn)])
        await asyncio.sleep(0)
    released.set()
    [record] = [r for r in caplog.records if r.__dict__.get("job") == name]
    assert record.levelno == logging.ERROR
    assert any("stubborn" in line for line in record.__dict__["stack"])
