"""The whole stack as `make run` starts it (migrations, seed, `shop.stack` under `kit.supervise`),
with the environment a test gives it: the end-to-end tests and the fault suite both run it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from kit import settings
from kit.supervise import read_procfile
from shop.map import SERVICES
from tests.processes import ROOT, Started, started

PROCFILE = ROOT / "Procfile"
# Every test request comes from 127.0.0.1 and the seed accounts are shared, so the stack runs with the
# limits a load test would set; tests/e2e/test_edge.py still shows the per-user limit at work.
OPEN_LIMITS = {
    "RATE_LIMIT_IP_PER_HOUR": "1000000",
    "RATE_LIMIT_USER_PER_MINUTE": "600",
    "EDGE_RATE_LIMIT_LOGIN": "off",
    "EDGE_RATE_LIMIT_MAIL": "off",
    # Notification retries a test can wait for: 0.3, 0.6, 1.2 ... seconds.
    "NOTIFY_EMAIL_RETRY_SECONDS": "0.3",
    "NOTIFY_SMS_RETRY_SECONDS": "0.3",
    "NOTIFY_PUSH_RETRY_SECONDS": "0.3",
}


@dataclass
class Stack:
    supervisor: Started
    env: Mapping[str, str]

    def url(self, name: str) -> str:
        return settings.service_url(name, self.env)

    def process(self, name: str) -> psutil.Process:
        """The running main process of Procfile line `name` (granian's or the edge's parent)."""
        module = next(p.command[-1] for p in read_procfile(PROCFILE) if p.name == name)
        for child in psutil.Process(self.supervisor.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.cmdline()[-2:] == ["-m", module] and child.status() != psutil.STATUS_ZOMBIE:
                    return child
        raise LookupError(f"{name} is not running")

    def wait_ready(self, name: str, within: float = 30.0) -> float:
        """Seconds until `name` answers its health probe, failing after `within`."""
        probe = "live" if SERVICES[name].database is None else "ready"
        return self.supervisor.wait_ready(f"{self.url(name)}/health/{probe}", within)


@contextlib.contextmanager
def running_stack(env: Mapping[str, str], logs: Path, procfile: Path = PROCFILE) -> Iterator[Stack]:
    """Migrate, seed, start every process of `procfile` and wait until each is ready; stop them all
    afterwards."""
    environment = {**os.environ, **env}
    for step in ("shop.migrate", "shop.seed"):  # as `make run` does
        done = subprocess.run([sys.executable, "-m", step], cwd=ROOT, env=environment, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{step} failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
    # The supervisor stops the processes it runs within their grace (kit.supervise) before it exits.
    with started("-m", "shop.stack", str(procfile), env=env, log=logs / "stack.log", grace=20) as supervisor:
        stack = Stack(supervisor, environment)
        # The edge needs no upstream to start, but it is asked last, once everything behind it answers.
        names = sorted((p.name for p in read_procfile(procfile)), key=lambda name: name == "edge")
        for name in names:
            stack.wait_ready(name)
        yield stack
