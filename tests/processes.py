"""Processes a test starts: `python -m <module>` (a service, the edge, a dev sink, the whole stack) with
the test environment and a few variables of the test's own, always stopped afterwards.

Each runs in a process group of its own, so stopping it stops the workers it forked (granian's, the
edge's) too; what is left after a grace period is killed with everything it started. Its output goes
to a log file, whose end a failure shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before it runs: SIGTERM when the test run that started it dies. A killed pytest must
    not leave a process behind (a stack would keep consuming the test vhost's queues, and the next run's
    events would go to it)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A loopback port nothing listens on (just released by the kernel), for a process to take."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Started:
    """A process `started` runs."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self, tail: int = 3000) -> str:
        """The end of what it wrote."""
        return self.log.read_text(errors="replace")[-tail:]

    def wait_ready(self, url: str, within: float = 30.0) -> float:
        """Seconds until `url` (its health probe) answers 200; fails with its output if it exits first or
        has not answered within `within` seconds."""
        began = time.monotonic()
        while time.monotonic() - began < within:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.popen.args} exited ({self.popen.returncode}):\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return time.monotonic() - began
            time.sleep(0.1)
        raise RuntimeError(f"{url} not ready within {within} s:\n{self.output()}")

    async def ready(self, url: str, within: float = 30.0) -> float:
        """`wait_ready` off the event loop, so what the test serves in-process goes on answering."""
        return await asyncio.to_thread(self.wait_ready, url, within)

    def kill(self) -> None:
        """SIGKILL to it and to everything it started (the stack's processes have sessions of their own)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM to its process group, `kill` after `grace` seconds; its exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode


@contextlib.contextmanager
def started(
    *args: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    errors: Path | None = None,
    grace: float = 10.0,
) -> Iterator[Started]:
    """`python <args>` from the repository's root with the test environment plus `env`, writing to `log`
    (a file of its own when not given), its stderr too unless `errors` names another file (the edge's
    access log is its stdout alone); stopped on the way out (`Started.stop`)."""
    with contextlib.ExitStack() as cleanup:
        if log is None:
            log = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "output.log"
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=cleanup.enter_context(log.open("ab")),
            stderr=cleanup.enter_context(errors.open("ab")) if errors else subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        process = Started(popen, log)
        try:
            yield process
        finally:
            process.stop(grace)
