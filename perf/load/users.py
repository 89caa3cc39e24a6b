"""The locust user classes: open-loop arrivals for `make load`, closed-loop users for exploring.

Open loop (`BrowserArrivals`, `BuyerArrivals`, `StaffArrivals`): one locust user per kind runs the
schedule of perf/load/arrivals.py at its rate (`--rates browser=..,buyer=..,staff=..`) for
`--arrival-seconds`, each arrival in its own greenlet on a shared keep-alive pool, timed from its due
time. A kind without a rate does nothing. When every schedule has run and its arrivals have answered,
the run ends by itself.

Closed loop (`Browser`, `Buyer`, `Staff`): ordinary locust users with weighted, tagged tasks
(`--tags catalog`, `checkout`, `staff`) and think time, for the web UI and `--users N`.
"""

from __future__ import annotations

import random
import time
from typing import ClassVar

import gevent
import gevent.pool
import gevent.queue
from locust import FastHttpUser, between, tag, task
from locust.env import Environment
from locust.exception import StopUser

from perf.load import browse, buy, staff
from perf.load.arrivals import Schedule, drive
from perf.load.profiles import parse_rates
from perf.load.timed import Visit
from perf.load.world import WORLD

IN_FLIGHT_LIMIT = 2_000  # arrivals of one kind waiting for answers before new ones are dropped
DRAIN_SECONDS = 15.0  # how long answers still in flight are waited for after the last arrival


class ArrivalDropped(Exception):
    """The generator had no room for an arrival: counted as an error of the run."""


class OpenLoop(FastHttpUser):
    abstract = True
    fixed_count = 1
    concurrency = 1_000  # keep-alive connections to the edge, shared by every arrival of this kind
    connection_timeout = 10.0
    network_timeout = 30.0
    scenario: ClassVar[str]
    running: ClassVar[set[str]] = set()

    def arrive(self, visit: Visit, rng: random.Random) -> None:
        raise NotImplementedError

    @task
    def schedule(self) -> None:
        options = self.environment.parsed_options
        rate = parse_rates(options.rates).get(self.scenario, 0.0) if options else 0.0
        if not rate:
            raise StopUser()
        OpenLoop.running.add(self.scenario)
        arrivals = gevent.pool.Pool(IN_FLIGHT_LIMIT)
        rng = random.Random()

        def launch(due: float) -> bool:
            if arrivals.full():
                return False
            arrivals.spawn(self.arrive, Visit(self.client, self.scenario, due), rng)
            return True

        seconds = float(options.arrival_seconds)
        drive(
            Schedule(rate, time.perf_counter(), seconds),
            clock=time.perf_counter, sleep=gevent.sleep, launch=launch, dropped=self._dropped,
        )  # fmt: skip
        arrivals.join(timeout=DRAIN_SECONDS)
        arrivals.kill()
        OpenLoop.running.discard(self.scenario)
        if not OpenLoop.running:
            _end_run(self.environment)
        raise StopUser()

    def _dropped(self, due: float, why: str = f"{IN_FLIGHT_LIMIT} arrivals in flight") -> None:
        self.environment.events.request.fire(
            request_type="ARRIVAL", name=f"{self.scenario} arrival dropped", response_time=0.0,
            response_length=0, exception=ArrivalDropped(why), context={"scenario": self.scenario},
            start_time=time.time() - (time.perf_counter() - due),
        )  # fmt: skip


def _end_run(environment: Environment) -> None:
    runner = environment.runner
    if runner is not None:
        gevent.spawn(runner.quit)


class BrowserArrivals(OpenLoop):
    scenario = "browser"

    def arrive(self, visit: Visit, rng: random.Random) -> None:
        browse.view(visit, WORLD.catalog, rng)


class BuyerArrivals(OpenLoop):
    scenario = "buyer"

    def arrive(self, visit: Visit, rng: random.Random) -> None:
        try:
            token = WORLD.idle_buyers.get_nowait()
        except gevent.queue.Empty:
            self._dropped(visit.due or time.perf_counter(), "no idle buyer in the pool: raise its size")
            return
        try:
            buy.session(visit, WORLD.catalog, token, WORLD.sandbox, rng)
        finally:
            WORLD.idle_buyers.put(token)


class StaffArrivals(OpenLoop):
    scenario = "staff"

    def arrive(self, visit: Visit, rng: random.Random) -> None:
        staff.act(visit, WORLD.staff, rng)


class Browser(FastHttpUser):
    wait_time = between(0.5, 3.0)
    rng = random.Random()

    def _view(self, view: browse.View) -> None:
        view(Visit(self.client, "browser"), WORLD.catalog, self.rng)

    @tag("catalog")
    @task(40)
    def detail(self) -> None:
        self._view(browse.detail)

    @tag("catalog")
    @task(28)
    def lists(self) -> None:
        self._view(browse.product_list if self.rng.random() < 0.7 else browse.trimmed_list)

    @tag("catalog")
    @task(14)
    def search(self) -> None:
        self._view(browse.search)

    @tag("catalog")
    @task(18)
    def around(self) -> None:
        self._view(self.rng.choice((browse.reviews, browse.category_tree, browse.brands)))


class Buyer(FastHttpUser):
    wait_time = between(2.0, 6.0)
    rng = random.Random()

    def on_start(self) -> None:
        try:
            self.token = WORLD.idle_buyers.get_nowait()
        except gevent.queue.Empty:
            raise StopUser() from None

    def on_stop(self) -> None:
        WORLD.idle_buyers.put(self.token)

    @tag("checkout")
    @task
    def shop(self) -> None:
        buy.session(Visit(self.client, "buyer"), WORLD.catalog, self.token, WORLD.sandbox, self.rng)


class Staff(FastHttpUser):
    wait_time = between(1.0, 5.0)
    rng = random.Random()

    @tag("staff")
    @task
    def act(self) -> None:
        staff.act(Visit(self.client, "staff"), WORLD.staff, self.rng)
