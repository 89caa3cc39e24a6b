"""The open-loop schedule (perf/load/arrivals.py), driven by a fake clock: arrivals keep their due
times when the generator or the system falls behind, and latency is counted from the due time."""

from __future__ import annotations

import pytest

from perf.load.arrivals import Schedule, drive, latency

pytestmark = pytest.mark.offline


class FakeClock:
    """A clock that only moves when slept on or when a test stalls it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_arrivals_come_at_the_fixed_rate_from_the_start() -> None:
    clock, sent = FakeClock(), []

    def launch(due: float) -> bool:
        sent.append((due, clock.now))
        return True

    launched = drive(Schedule(4, clock.now, 2), clock=clock, sleep=clock.sleep, launch=launch, dropped=print)
    assert launched == 8
    assert [due for due, _ in sent] == pytest.approx([100 + i / 4 for i in range(8)])
    assert all(at == pytest.approx(due) for due, at in sent)  # on time: each sent when due


def test_a_stall_does_not_lower_the_offered_rate_and_late_arrivals_keep_their_due_time() -> None:
    clock, sent = FakeClock(), []

    def launch(due: float) -> bool:
        sent.append((due, clock.now))
        if len(sent) == 3:
            clock.now += 1.0  # the generator is descheduled for a second after the third send
        return True

    drive(Schedule(10, clock.now, 1), clock=clock, sleep=clock.sleep, launch=launch, dropped=print)
    dues = [due for due, _ in sent]
    assert dues == pytest.approx([100 + i / 10 for i in range(10)])  # all ten, none skipped
    late = [at - due for due, at in sent[3:]]
    assert late[0] == pytest.approx(0.9)  # due at 100.3, sent at 101.2 (when the stall ended)
    assert all(at == pytest.approx(101.2) for _, at in sent[3:])  # the backlog goes out at once


def test_latency_counts_from_the_intended_send_time_not_from_the_late_send() -> None:
    # A request due at 10.0 that could only be sent at 10.5 and was answered at 10.52 took 520 ms
    # for its user, not the 20 ms a closed-loop tool would record.
    assert latency(due=10.0, completed=10.52) == pytest.approx(0.52)


def test_an_arrival_without_room_is_dropped_once_and_not_retried() -> None:
    clock, dropped, launched = FakeClock(), [], []

    def launch(due: float) -> bool:
        if 100.2 <= due < 100.5:
            return False  # the generator's in-flight limit is reached
        launched.append(due)
        return True

    count = drive(
        Schedule(10, clock.now, 1), clock=clock, sleep=clock.sleep, launch=launch, dropped=dropped.append
    )
    assert count == 7 and len(launched) == 7
    assert dropped == pytest.approx([100.2, 100.3, 100.4])


def test_the_schedule_holds_rate_times_duration_arrivals_inside_the_run() -> None:
    assert Schedule(0.5, 0, 30).count == 15
    assert Schedule(40, 0, 30).count == 1200
    assert Schedule(3, 0, 1).due(2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        Schedule(0, 0, 30)
