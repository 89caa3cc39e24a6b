"""A test that hangs fails, with what every task was waiting on, instead of stalling the run.

Every test shares one event loop (pyproject: loop scope "session"), so a coroutine that waits for
something that never comes parks the whole run in `select()` with nothing on stderr: CI then stops at
its own time limit with no clue. Past `TEST_HANG_SECONDS` (setup, call and teardown of one test), this
prints the stack of every thread and every asyncio task, then cancels the tasks of the loop so the test
fails and the run goes on.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading
from collections.abc import Iterator

import pytest

HANG_SECONDS = float(os.environ.get("TEST_HANG_SECONDS", "240"))

_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def watched_loop() -> None:
    """Remembers the session's event loop: the watchdog's thread reaches its tasks through it."""
    global _loop
    _loop = asyncio.get_running_loop()


def _dump_and_cancel(test: str) -> None:
    print(f"\n=== {test} still running after {HANG_SECONDS:.0f} s: threads and tasks ===", file=sys.stderr)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    loop = _loop
    if loop is None or loop.is_closed():
        return

    def on_loop() -> None:
        for task in asyncio.all_tasks(loop):
            print(f"--- {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        for task in asyncio.all_tasks(loop):
            task.cancel(f"hung for {HANG_SECONDS:.0f} s (tests/watchdog.py)")

    loop.call_soon_threadsafe(on_loop)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    timer = threading.Timer(HANG_SECONDS, _dump_and_cancel, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
