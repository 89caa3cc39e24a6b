"""Retry loops that stop when they are told to.

A background loop catches a dependency's errors and tries again. On Python 3.11 a cancellation can
reach such a loop disguised as one of them: `asyncio.wait_for` (used inside asyncpg's connect and
acquire, among others) raises TimeoutError instead of CancelledError when the cancellation and its
timeout meet, and a library may turn it into a connection error. The loop then retries forever and
the process never stops. The task still says it is being cancelled (`Task.cancelling()`), so a loop
asks after each caught error.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Re-raise the current task's cancellation if one is pending; call it in a retry loop's `except`."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
