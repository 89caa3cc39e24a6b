"""The stack as `make run` starts it (on the test ports), driven only through the edge."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from kit import settings

ROOT = Path(__file__).resolve().parents[2]
# Every e2e request comes from 127.0.0.1 and the seed accounts are shared, so the stack runs with the
# limits a load test would set; tests/e2e/test_edge.py still shows the per-user limit at work.
STACK_ENVIRONMENT = {
    "RATE_LIMIT_IP_PER_HOUR": "1000000",
    "RATE_LIMIT_USER_PER_MINUTE": "600",
    "EDGE_RATE_LIMIT_LOGIN": "off",
    "EDGE_RATE_LIMIT_MAIL": "off",
    # Notification retries a test can wait for: 0.3, 0.6, 1.2 ... seconds.
    "NOTIFY_EMAIL_RETRY_SECONDS": "0.3",
    "NOTIFY_SMS_RETRY_SECONDS": "0.3",
    "NOTIFY_PUSH_RETRY_SECONDS": "0.3",
}


def _processes() -> list[tuple[str, list[str], str]]:
    """(name, command, URL answering 200 once ready) for each Procfile line, the edge last."""
    found = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = (part.strip() for part in line.split(":", 1))
        probe = "live" if settings.SERVICES[name].database is None else "ready"
        found.append((name, command.split(), f"{settings.service_url(name)}/health/{probe}"))
    return sorted(found, key=lambda p: p[0] == "edge")


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, within: float = 30.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {within} s:\n{log.read_text()[-3000:]}")


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("stack-logs")
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    for step in ("kit.migrate", "kit.seed"):  # as `make run` does
        subprocess.run([sys.executable, "-m", step], cwd=ROOT, check=True, capture_output=True)
    try:
        # All at once (the edge needs no upstream to start); then wait for each to be ready.
        for name, command, ready_url in _processes():
            log = logs / f"{name}.log"
            executable = sys.executable if command[0] == "python" else command[0]
            process = subprocess.Popen(
                [executable, *command[1:]],
                cwd=ROOT,
                env={**os.environ, **STACK_ENVIRONMENT},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                # Its own process group, so stopping it stops granian's workers too.
                start_new_session=True,
            )
            started.append((process, ready_url, log))
        for process, ready_url, log in started:
            _wait_ready(ready_url, process, log)
        yield {"edge": settings.service_url("edge"), "mail": settings.service_url("mailsink")}
    finally:
        for process, _, _ in reversed(started):
            _signal_group(process, signal.SIGTERM)
        for process, _, _ in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)


@pytest.fixture
async def edge(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["edge"], timeout=10) as client:
        yield client


@pytest.fixture
async def mail(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["mail"], timeout=10) as client:
        yield client
