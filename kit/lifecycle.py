"""A process's lifecycle: background work that outlives its failures, and a start and a stop that never
wait forever.

- `every(seconds, work)` is periodic work (a sweep, a reconciliation round, a flush): `work()` now,
  then every `seconds`, until cancelled. A round that raises (anything but the cancellation at
  shutdown) is logged and counted in `shop_job_failures_total{job}`, and the next round waits
  longer: the pause doubles with each failure in a row (from `seconds`, at least `FIRST_PAUSE`) up to
  `MAX_PAUSE`, or `seconds` when that is longer. The first round that succeeds again is logged too.
- `keep_running(name, job)` runs work meant to last until cancelled (a server, a consumer, a batcher);
  `kit.app` runs every `Service.jobs` entry under it. A job that raises or returns is logged and
  counted the same way and started again after the same growing pause.
- `raise_if_cancelled()` in a retry loop's `except`: on Python 3.11 a cancellation can reach the loop
  disguised as an ordinary error (`asyncio.wait_for`, used inside asyncpg's connect and acquire,
  raises TimeoutError when the cancellation meets its timeout; a library may make a connection error
  of it). The task still says it is being cancelled, so the loop asks, and ends instead of retrying
  forever (which kept a stopping process, and the test suite, waiting for good).
- `Lifespan` holds what a process opened (pools, clients, an engine) and closes it in reverse order at
  stop, also when a later opening failed. An opening may take `START_SECONDS` and a closing
  `STOP_SECONDS`: one that takes longer (a server that stopped answering) fails the start, or is logged
  and left behind at stop, instead of hanging the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import NoReturn, TypeVar

from prometheus_client import Counter

from kit.errors import DEPENDENCY_ERRORS

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[], Awaitable[object]]

FIRST_PAUSE, MAX_PAUSE = 0.5, 10.0
# A job that ran this long before it died starts again from the first pause.
STABLE_AFTER = 30.0
START_SECONDS, STOP_SECONDS = 60.0, 10.0

job_failures = Counter(
    "shop_job_failures_total", "Background job rounds that raised, and jobs that ended, by job", ["job"]
)


class _Failures:
    """The failures in a row of one job, and the pause each one earns."""

    def __init__(self, job: str, seconds: float) -> None:
        self.job = job
        self.seconds = seconds
        self.count = 0

    def failed(self, exc: Exception | None) -> float:
        self.count += 1
        first = max(self.seconds, FIRST_PAUSE)
        pause = min(first * 2.0 ** min(self.count - 1, 16), max(self.seconds, MAX_PAUSE))
        job_failures.labels(self.job).inc()
        log.warning(
            "background job failed, retrying" if exc is not None else "background job ended, restarting",
            extra={"job": self.job, "error": repr(exc), "failures": self.count, "retryIn": pause},
            # A dependency's outage says enough in one line; anything else is a bug: its traceback.
            exc_info=exc if exc is not None and not isinstance(exc, DEPENDENCY_ERRORS) else None,
        )
        return pause

    def succeeded(self) -> None:
        if self.count:
            log.info("background job recovered", extra={"job": self.job, "failures": self.count})
            self.count = 0


async def every(
    seconds: float, work: Work, *, name: str | None = None, wake: asyncio.Event | None = None
) -> NoReturn:
    """Run `work()` now and then every `seconds` until cancelled, whatever a round raises (see the module).

    `name` labels the log lines and the metric (default: the function's name). `wake`, when set,
    ends the pause after a successful round early: work that is due at once (it is cleared then).
    """
    failures = _Failures(name or str(getattr(work, "__name__", work)), seconds)
    while True:
        try:
            await work()
        except Exception as exc:
            raise_if_cancelled()
            await asyncio.sleep(failures.failed(exc))
            continue
        failures.succeeded()
        if wake is None:
            await asyncio.sleep(seconds)
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()
        wake.clear()


async def keep_running(name: str, job: Work) -> NoReturn:
    """Run `job()` until cancelled; started again, after a growing pause, whenever it raises or returns."""
    loop = asyncio.get_running_loop()
    failures = _Failures(name, 0.0)
    while True:
        began = loop.time()
        problem: Exception | None = None
        try:
            await job()
        except Exception as exc:
            problem = exc
        # A job that swallowed its cancellation (and so returned or failed) is not started again.
        raise_if_cancelled()
        if loop.time() - began > STABLE_AFTER:
            failures.count = 0
        await asyncio.sleep(failures.failed(problem))


def raise_if_cancelled() -> None:
    """Re-raise the current task's pending cancellation, if any (see the module)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def awaiting(task: asyncio.Task[object]) -> list[str]:
    """Where `task` waits, outermost first: the whole chain of awaits (`Task.get_stack` shows only its
    first coroutine)."""
    chain: list[str] = []
    step: object = task.get_coro()
    while (frame := getattr(step, "cr_frame", None)) is not None:
        chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        step = getattr(step, "cr_await", None)
    return chain


class Lifespan:
    """What a process opened, closed in reverse order when the `async with` block ends (see the module)."""

    def __init__(self, start_seconds: float = START_SECONDS, stop_seconds: float = STOP_SECONDS) -> None:
        self.start_seconds = start_seconds
        self.stop_seconds = stop_seconds
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Lifespan:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._stack.__aexit__(kind, exc, tb)

    async def start(self, name: str, opening: Awaitable[T]) -> T:
        """`await opening`, or TimeoutError naming `name` once it took `start_seconds`."""
        bound = asyncio.timeout(self.start_seconds)
        try:
            async with bound:
                return await opening
        except TimeoutError:
            if bound.expired():
                raise TimeoutError(f"{name} did not open within {self.start_seconds:g} s") from None
            raise

    async def enter(self, name: str, resource: AbstractAsyncContextManager[T]) -> T:
        """Enter `resource` (bounded as `start`); it is exited at stop like an `on_stop` step."""
        value = await self.start(name, resource.__aenter__())
        self.on_stop(name, lambda: resource.__aexit__(None, None, None))
        return value

    def on_stop(self, name: str, close: Work) -> None:
        """Have `close()` run at stop, before whatever was registered earlier."""
        self._stack.push_async_callback(self._stop, name, close)

    def run(self, jobs: Iterable[tuple[str, Work]]) -> None:
        """Run `jobs` (name, job) in the background, each under `keep_running`; at stop they are all
        cancelled before anything registered earlier closes."""
        tasks = [asyncio.create_task(keep_running(name, job), name=name) for name, job in jobs]

        async def cancel() -> None:
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=self.stop_seconds)
                for task in stuck:
                    log.error(
                        "background job did not stop in time, left behind",
                        extra={"job": task.get_name(), "stack": awaiting(task)},
                    )

        self._stack.push_async_callback(cancel)

    async def _stop(self, name: str, close: Work) -> None:
        try:
            async with asyncio.timeout(self.stop_seconds):
                await close()
        except TimeoutError:
            log.error("not closed in time, left behind", extra={"step": name, "seconds": self.stop_seconds})
        except Exception:
            log.exception("closing failed", extra={"step": name})
