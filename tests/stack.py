"""The whole stack as `make run` starts it (migrations, seed, `kit.stack` under `kit.supervise`),
with the environment a test gives it: the end-to-end tests and the fault suite both run it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from kit import settings
from kit.supervise import read_procfile

ROOT = Path(__file__).resolve().parents[1]
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
    supervisor: subprocess.Popen[bytes]
    env: Mapping[str, str]
    log: Path

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
        began = time.monotonic()
        probe = "live" if settings.SERVICES[name].database is None else "ready"
        url = f"{self.url(name)}/health/{probe}"
        while time.monotonic() - began < within:
            if self.supervisor.poll() is not None:
                raise RuntimeError(f"the supervisor exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} not ready within {within} s:\n{self.log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_stack(env: Mapping[str, str], logs: Path) -> Iterator[Stack]:
    """Migrate, seed, start every process and wait until each is ready; stop them all afterwards."""
    environment = {**os.environ, **env}
    for step in ("kit.migrate", "kit.seed"):  # as `make run` does
        done = subprocess.run([sys.executable, "-m", step], cwd=ROOT, env=environment, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"{step} failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
    log = logs / "stack.log"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "kit.stack", str(PROCFILE)],
        cwd=ROOT,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(supervisor, environment, log)
    try:
        # The edge needs no upstream to start, but it is asked last, once everything behind it answers.
        names = sorted((p.name for p in read_procfile(PROCFILE)), key=lambda name: name == "edge")
        for name in names:
            stack.wait_ready(name)
        yield stack
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for process in [*psutil.Process(supervisor.pid).children(recursive=True), supervisor]:
                with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                    process.kill()
            supervisor.wait()
