"""Requests timed from their intended send time, and every answer written to the run's samples CSV.

Locust times a request from when its client sent it. Open loop, a request is due at its arrival's
scheduled time (perf/load/arrivals.py), and any wait before the send (the generator late, a pooled
connection busy) belongs in its latency: `Visit` rewrites locust's figure to `answered - due` before
locust records it, so locust's own statistics and HTML report show the same latencies as ours.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Collection
from typing import IO, Any

from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager

from perf.load.arrivals import latency

SAMPLE_COLUMNS = ("sent", "scenario", "name", "status", "latency_ms", "error")


class Visit:
    """One arrival's requests. The first is timed from the arrival's due time (a `perf_counter`
    reading, or None for closed-loop users: now); each later one from when it is sent, since it waits
    on the answer before it by design."""

    def __init__(self, client: FastHttpSession, scenario: str, due: float | None = None) -> None:
        self.client = client
        self.scenario = scenario
        self._due = due

    @property
    def due(self) -> float | None:
        """When the next request of this visit was due (None: when it is sent)."""
        return self._due

    def request(
        self, method: str, url: str, *, name: str, expect: Collection[int] = (200,), **kwargs: Any
    ) -> ResponseContextManager:
        """`method url`, recorded under `name`; an answer outside `expect` is a failure."""
        due = time.perf_counter() if self._due is None else self._due
        self._due = None
        context = {"scenario": self.scenario}
        answer = self.client.request(method, url, name=name, catch_response=True, context=context, **kwargs)
        with answer:
            now = time.perf_counter()
            answer.request_meta["response_time"] = latency(due, now) * 1000
            answer.request_meta["start_time"] = time.time() - (now - due)
            if answer.status_code in expect:
                answer.success()
            else:
                answer.failure(f"{answer.status_code or 'no answer'}: {(answer.text or '')[:300]}")
        return answer


class Samples:
    """Writes one CSV row per recorded request (a listener of locust's `request` event)."""

    def __init__(self, sink: IO[str]) -> None:
        self.sink = sink
        self.writer = csv.writer(sink)
        self.writer.writerow(SAMPLE_COLUMNS)

    def record(
        self,
        name: str,
        response_time: float,
        start_time: float,
        exception: BaseException | None,
        context: dict[str, Any],
        response: Any = None,
        **_: Any,
    ) -> None:
        status = getattr(response, "status_code", 0) or 0
        error = "" if exception is None else str(exception).replace("\n", " ")[:200]
        scenario = context.get("scenario", "")
        self.writer.writerow((f"{start_time:.4f}", scenario, name, status, f"{response_time:.2f}", error))

    def close(self) -> None:
        self.sink.close()
