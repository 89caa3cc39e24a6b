"""`make run`'s supervisor: a process that dies is started again and the others never notice."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from kit.supervise import Program, Supervisor, read_procfile
from tests.support import eventually

pytestmark = pytest.mark.offline

SLEEPER = (sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)")
QUITTER = (sys.executable, "-c", "import sys; print('up', flush=True); sys.exit(3)")


async def started(out: io.StringIO, name: str, times: int = 1) -> bool:
    """Whether `name` has printed its first line `times` times."""
    return len(re.findall(rf" {name} +\| up", out.getvalue())) >= times


async def test_a_procfile_line_is_a_named_program_and_python_is_this_interpreter(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# the stack\nweb: python -m svc_auth\n\nedge:   python -m edge --flag\n")
    assert read_procfile(procfile) == [
        Program("web", (sys.executable, "-m", "svc_auth")),
        Program("edge", (sys.executable, "-m", "edge", "--flag")),
    ]


async def test_a_killed_process_is_started_again_while_the_others_run_on() -> None:
    out = io.StringIO()
    supervisor = Supervisor([Program("order", SLEEPER), Program("inventory", SLEEPER)], out)
    running = asyncio.create_task(supervisor.run())
    await eventually(lambda: started(out, "order"))
    await eventually(lambda: started(out, "inventory"))
    killed, other = supervisor.pids["order"], supervisor.pids["inventory"]

    os.kill(killed, signal.SIGKILL)
    await eventually(lambda: started(out, "order", times=2))
    assert supervisor.pids["order"] != killed
    assert supervisor.pids["inventory"] == other
    os.kill(other, 0)  # still alive
    assert "order     | exited with signal SIGKILL; starting it again in 0.5 s" in out.getvalue()

    supervisor.stop()
    await asyncio.wait_for(running, 15)


async def test_a_process_that_keeps_exiting_is_restarted_with_growing_delays() -> None:
    out = io.StringIO()
    supervisor = Supervisor([Program("flaky", QUITTER)], out)
    running = asyncio.create_task(supervisor.run())
    await eventually(lambda: started(out, "flaky", times=3), within=15)
    output = out.getvalue()
    assert "exited with code 3; starting it again in 0.5 s" in output
    assert "exited with code 3; starting it again in 1 s" in output
    supervisor.stop()
    await asyncio.wait_for(running, 15)


async def test_stopping_ends_every_process_and_its_children() -> None:
    # A parent with a child of its own, as granian's master and its workers are.
    family = (
        sys.executable,
        "-c",
        "import subprocess, sys, time;"
        " child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
        " print('up', child.pid, flush=True); time.sleep(600)",
    )
    out = io.StringIO()
    supervisor = Supervisor([Program("family", family)], out)
    running = asyncio.create_task(supervisor.run())
    await eventually(lambda: started(out, "family"))
    output = out.getvalue()
    child = int(output.split("| up ")[1].split()[0])
    parent = supervisor.pids["family"]
    supervisor.stop()
    await asyncio.wait_for(running, 15)
    await eventually(lambda: gone(parent, child))


async def gone(*pids: int) -> bool:
    return not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of an exited child still has a pid until reaped: it is not running.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"
