"""Requests timed from their intended send time (perf/load/timed.py): what locust records, and the
samples CSV, carry the wait before a late send."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from locust.contrib.fasthttp import ResponseContextManager
from locust.event import EventHook

from perf.load.timed import SAMPLE_COLUMNS, Samples, Visit

pytestmark = pytest.mark.offline

# These tests need locust's classes, not its gevent monkey-patching of the whole test process (see
# conftest.py, which sets LOCUST_SKIP_MONKEY_PATCH before locust is imported).


class Wire:
    """geventhttpclient's answer, reduced to its status."""

    def __init__(self, status: int) -> None:
        self.status = status

    def get_code(self) -> int:
        return self.status


class Answer:
    """What locust's FastHttpSession hands back, reduced to what `Visit` and locust's
    ResponseContextManager read."""

    def __init__(self, status: int) -> None:
        self._response = Wire(status)
        self._cached_content = b'{"error":"NotFound"}' if status == 404 else b"{}"
        self.encoding = "utf-8"
        self.headers = {"content-type": "application/json"}
        self.request = None

    @property
    def status_code(self) -> int:
        return self._response.get_code()


class Client:
    """Answers at once with `status`, firing locust's request event as FastHttpSession does."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.request_event = EventHook()
        self.recorded: list[dict[str, Any]] = []
        self.request_event.add_listener(lambda **meta: self.recorded.append(meta))

    def request(self, method: str, url: str, *, name: str, catch_response: bool, context: dict[str, Any],
                **_: Any) -> ResponseContextManager:  # fmt: skip
        answer = Answer(self.status)
        meta = {
            "request_type": method, "name": name, "context": context, "response_time": 0.2,
            "start_time": time.time(), "exception": None, "response_length": 2, "response": answer,
        }  # fmt: skip
        return ResponseContextManager(answer, self.request_event, meta, catch_response)


def test_a_request_sent_late_is_timed_from_when_it_was_due() -> None:
    client = Client(200)
    due = time.perf_counter() - 0.5  # the generator was half a second behind this arrival
    Visit(client, "browser", due).request("GET", "/api/products/1", name="GET /api/products/{id}")
    [meta] = client.recorded
    assert meta["response_time"] >= 500  # not locust's own 0.2 ms from the actual send
    assert meta["start_time"] <= time.time() - 0.5 and meta["exception"] is None


def test_later_requests_of_a_visit_are_timed_from_their_own_send() -> None:
    client = Client(200)
    visit = Visit(client, "buyer", time.perf_counter() - 0.5)
    visit.request("GET", "/api/cart", name="GET /api/cart")
    visit.request("GET", "/api/orders", name="GET /api/orders")
    first, second = client.recorded
    assert first["response_time"] >= 500 and second["response_time"] < 500


def test_an_unexpected_answer_is_a_failure_and_an_expected_one_is_not() -> None:
    client = Client(404)
    visit = Visit(client, "buyer")
    visit.request("GET", "/api/payments/orders/1", name="payment", expect=(200, 404))
    visit.request("GET", "/api/orders/1", name="order")
    assert client.recorded[0]["exception"] is None
    assert "404" in str(client.recorded[1]["exception"])


def test_every_recorded_request_becomes_a_row_of_the_samples_csv() -> None:
    sink = io.StringIO()
    samples = Samples(sink)
    client = Client(404)
    client.request_event.add_listener(samples.record)
    Visit(client, "buyer", time.perf_counter() - 0.25).request("GET", "/api/orders/1", name="order")
    header, row = list(csv.reader(io.StringIO(sink.getvalue())))
    assert tuple(header) == SAMPLE_COLUMNS
    assert row[1:4] == ["buyer", "order", "404"] and float(row[4]) >= 250 and row[5].startswith("404")
