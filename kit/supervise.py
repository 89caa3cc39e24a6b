"""Programs (the lines of a Procfile) each as a process of its own, kept running.

`make run` and the end-to-end tests run the stack through this (`shop.stack` plans it). A process
that exits (a crash, an OOM kill) is logged and started again, after 0.5 s, doubling up to 10 s
while it keeps dying within 30 s of its start; the others go on, so one crash costs only the
requests that process held. SIGTERM or Ctrl-C stops them all: SIGTERM to each process group,
`GRACE` seconds to drain, then SIGKILL. Each output line is prefixed with its process's name, as
honcho (which stopped the whole stack when one process exited) did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

GRACE = 10.0
FIRST_DELAY, MAX_DELAY, STABLE_AFTER = 0.5, 10.0, 30.0


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # beyond the supervisor's own environment


def read_procfile(path: Path) -> list[Program]:
    """The `name: command` lines of a Procfile; `python` runs as this interpreter (the virtualenv's)."""
    programs = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        words = command.split()
        if words and words[0] == "python":
            words[0] = sys.executable
        programs.append(Program(name.strip(), tuple(words)))
    return programs


class Supervisor:
    def __init__(self, programs: Sequence[Program], out: TextIO = sys.stdout) -> None:
        self.programs = programs
        self.out = out
        self.stopping = asyncio.Event()
        self.pids: dict[str, int] = {}
        self._width = max((len(p.name) for p in programs), default=0)

    def say(self, name: str, text: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S')} {name.ljust(self._width)} | {text}\n")
        self.out.flush()

    async def run(self) -> None:
        """Run every program until `stop()`; return once all have exited."""
        await asyncio.gather(*(self._keep_running(program) for program in self.programs))

    def stop(self) -> None:
        self.stopping.set()

    async def _keep_running(self, program: Program) -> None:
        delay = FIRST_DELAY
        while not self.stopping.is_set():
            began = time.monotonic()
            code = await self._run_once(program)
            if self.stopping.is_set():
                return
            if time.monotonic() - began > STABLE_AFTER:
                delay = FIRST_DELAY
            self.say(program.name, f"exited with {_describe(code)}; starting it again in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stopping.wait()
            delay = min(delay * 2, MAX_DELAY)

    async def _run_once(self, program: Program) -> int:
        process = await asyncio.create_subprocess_exec(
            *program.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **program.env},
            # Its own process group: stopping it reaches its workers too.
            start_new_session=True,
        )
        self.pids[program.name] = process.pid
        self.say(program.name, f"started with pid {process.pid}")
        copying = asyncio.create_task(self._copy_output(program.name, process))
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            await _stop(process, exited)
        # Workers a dead master left behind would hold its port against the next one.
        _signal_group(process.pid, signal.SIGKILL)
        await copying
        return exited.result()

    async def _copy_output(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            self.say(name, line.decode(errors="replace").rstrip("\n"))


async def _stop(process: asyncio.subprocess.Process, exited: asyncio.Task[int]) -> None:
    _signal_group(process.pid, signal.SIGTERM)
    done, _ = await asyncio.wait({exited}, timeout=GRACE)
    if not done:
        _signal_group(process.pid, signal.SIGKILL)
        await exited


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"
