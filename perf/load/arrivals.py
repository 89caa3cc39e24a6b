"""The open-loop schedule: arrivals at a fixed rate that never wait for the system under test.

Arrival `i` is due at `start + i / rate`, whatever happened to the earlier ones. When the generator
falls behind (its process was descheduled, or the launch itself was slow) the overdue arrivals are
launched at once with their original due times, so the lateness is charged to the system's latency
instead of silently lowering the offered rate: the "coordinated omission" that closed-loop tools
(a user waits for an answer before sending again) suffer from. Latency is always `completed - due`.

Pure: the clock, the sleep and the launch are passed in, so the tests drive it with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """`rate` arrivals a second from `start` (a clock reading in seconds) for `duration` seconds."""

    rate: float
    start: float
    duration: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0:
            raise ValueError("an open-loop schedule needs a positive rate and duration")

    @property
    def count(self) -> int:
        """How many arrivals fall inside the run (the first at `start`, none at or after its end)."""
        return math.ceil(self.rate * self.duration - 1e-9)

    def due(self, index: int) -> float:
        return self.start + index / self.rate


def latency(due: float, completed: float) -> float:
    """Seconds from the intended send time to the answer: the wait for a late send is included."""
    return completed - due


def drive(
    schedule: Schedule,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    launch: Callable[[float], bool],
    dropped: Callable[[float], None],
) -> int:
    """Launch every arrival of `schedule` at its due time; returns how many were launched.

    `launch(due)` starts one arrival without waiting for it and returns False when the generator has
    no room for it (too many still in flight): that arrival is reported to `dropped(due)`, never
    retried later, so a stalled system shows up as errors rather than as a lower rate.
    """
    launched = 0
    for index in range(schedule.count):
        due = schedule.due(index)
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        if launch(due):
            launched += 1
        else:
            dropped(due)
    return launched
