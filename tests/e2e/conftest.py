"""The stack as `make run` starts it (on the test ports), driven only through the edge."""

from __future__ import annotations

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
SEEDS = ["svc_auth.seed"]
# (module, URL that answers 200 once the process is ready), in start order.
PROCESSES = [
    ("devsinks.mail", f"{settings.service_url('mailsink')}/health/live"),
    ("svc_auth", f"{settings.service_url('auth')}/health/ready"),
    ("svc_notify", f"{settings.service_url('notify')}/health/ready"),
    ("edge", f"{settings.service_url('edge')}/health/live"),
]


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


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("stack-logs")
    started: list[subprocess.Popen[bytes]] = []
    for seed in SEEDS:
        subprocess.run([sys.executable, "-m", seed], cwd=ROOT, check=True, capture_output=True)
    try:
        for module, ready_url in PROCESSES:
            log = logs / f"{module}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env=os.environ.copy(),
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            started.append(process)
            _wait_ready(ready_url, process, log)
        yield {"edge": settings.service_url("edge"), "mail": settings.service_url("mailsink")}
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
async def edge(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["edge"], timeout=10) as client:
        yield client


@pytest.fixture
async def mail(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["mail"], timeout=10) as client:
        yield client
