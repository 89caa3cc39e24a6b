"""What every locust user shares during a run, set up once before the first arrival, and the run's
own command-line options, samples file and progress line.

Before any user starts: the demo catalog's products for sale (rebuilt from the seed's generator), the
category and brand ids (two reads through the edge), the staff's tokens
(the seed seller and admin) and the buyer pool's tokens, every login straight at svc_auth (`--auth-host`):
argon2 costs ~20 ms of CPU per login and the edge limits logins per client, neither of which is what a
load run measures.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.pool
import gevent.queue
import requests
from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from kit import settings
from perf.load import pool
from perf.load.browse import Catalog, demo_products
from perf.load.staff import Staff
from perf.load.timed import Samples

LOGINS_AT_ONCE = 4  # argon2 is the bottleneck of a login: more at once only queues in svc_auth
PROGRESS_EVERY = 5.0


@dataclass
class World:
    catalog: Catalog = field(default_factory=Catalog)
    staff: Staff = field(default_factory=lambda: Staff({}, {}, Catalog()))
    idle_buyers: gevent.queue.Queue[str] = field(default_factory=gevent.queue.Queue)
    sandbox: str = ""


WORLD = World()


def _login(auth: str, email: str, password: str) -> str:
    answer = requests.post(f"{auth}/api/auth/login", json={"email": email, "password": password}, timeout=30)
    if answer.status_code != 200:
        raise SystemExit(f"login of {email} at {auth} answered {answer.status_code}: {answer.text[:200]}")
    return str(answer.json()["accessToken"])


def _ids(host: str, path: str) -> list[str]:
    """Every `id` in the tree or list at `path` (categories nest their `children`)."""
    found: list[str] = []
    pending: list[Any] = list(requests.get(f"{host}{path}", timeout=30).json())
    while pending:
        item = pending.pop()
        found.append(item["id"])
        pending.extend(item.get("children") or ())
    return found


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument("--rates", default="", help="open-loop arrivals/s, e.g. browser=40,buyer=2,staff=0.5")
    parser.add_argument("--arrival-seconds", type=float, default=30.0, help="how long arrivals come")
    parser.add_argument(
        "--buyers", type=int, default=50, help="pool accounts to log in (perf/load/buyers.py)"
    )
    parser.add_argument("--auth-host", default=settings.service_url("auth"), help="svc_auth, for the logins")
    parser.add_argument("--sandbox-host", default=settings.service_url("sandbox"), help="the payment sandbox")
    parser.add_argument("--samples-csv", default="", help="write every request here (perf/load/timed.py)")


@events.test_start.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    assert options is not None and environment.host
    WORLD.catalog = Catalog(
        demo_products(), _ids(environment.host, "/api/categories"), _ids(environment.host, "/api/brands")
    )
    WORLD.sandbox = options.sandbox_host.rstrip("/")
    seller = _login(options.auth_host, "seller@shop.local", "Seller123!")
    admin = _login(options.auth_host, "admin@shop.local", "Admin123!")
    WORLD.staff = Staff(
        {"Authorization": f"Bearer {seller}"}, {"Authorization": f"Bearer {admin}"}, WORLD.catalog
    )
    logins = gevent.pool.Pool(LOGINS_AT_ONCE)
    for token in logins.imap_unordered(
        lambda n: _login(options.auth_host, pool.email(n), pool.PASSWORD), range(1, options.buyers + 1)
    ):
        WORLD.idle_buyers.put(token)
    if options.samples_csv:
        samples = Samples(open(options.samples_csv, "w", newline=""))  # noqa: SIM115 (closed at quit)
        environment.events.request.add_listener(samples.record)
        environment.events.quitting.add_listener(lambda **_: samples.close())
    gevent.spawn(_progress, environment, time.monotonic(), float(options.arrival_seconds))


def _progress(environment: Environment, began: float, seconds: float) -> None:
    """A line every few seconds: where the run is, the rate it achieves, p99 now and errors so far."""
    stats = environment.stats.total
    while True:
        gevent.sleep(PROGRESS_EVERY)
        p99 = stats.get_current_response_time_percentile(0.99) or 0
        print(
            f"[{time.monotonic() - began:5.0f}/{seconds:.0f} s] {stats.current_rps:7.1f} req/s,"
            f" p99 (last 10 s) {p99:6.0f} ms, {stats.num_requests} requests, {stats.num_failures} errors",
            file=sys.stderr,
            flush=True,
        )
