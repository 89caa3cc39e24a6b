"""CPU time by part of a running stack, from /proc: each service (with its granian workers), the edge,
PostgreSQL's backends by database, the shared Redis and RabbitMQ, and the load generator itself.

The machine may be shared (other stacks, other benchmarks): a process counts for this stack only when
its environment names this stack's edge port, a PostgreSQL backend only when it serves one of this
stack's databases. Redis and RabbitMQ are shared servers: their whole CPU is shown as they are.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shop.map import SERVICES

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Not a part: the whole machine's busy CPU (/proc/stat), which only grows, unlike the sum over live
# processes, which drops when one of them exits.
MACHINE = "machine (every process)"
_STACK_PROCESS = re.compile(r"-m (svc_\w+|edge|devsinks\.\w+)")


@dataclass
class Proc:
    pid: int
    parent: int
    cpu: float
    cmdline: str
    environ: bytes


def _processes() -> dict[int, Proc]:
    found: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = (
                Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        found[int(entry)] = Proc(int(entry), int(fields[1]), cpu, cmdline.strip() or name, environ)
    return found


def _machine_busy() -> float:
    """CPU seconds the machine has spent busy since boot, over all its cores."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _databases(stack: list[Proc]) -> set[str]:
    """The databases this stack's services use: their `*_DATABASE_URL`s, else the contract's names."""
    named = {
        m.group(1).decode() for p in stack for m in re.finditer(rb"_DATABASE_URL=[^\0]*/(\w+)", p.environ)
    }
    return named or {spec.database for spec in SERVICES.values() if spec.database}


def cpu_by_part(edge_port: int, clients: Mapping[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) spent so far by each part of this stack's live processes;
    `clients` names the load generators' pids (their children count with them)."""
    procs = _processes()
    mark = b"EDGE_PORT=%d\0" % edge_port
    default = edge_port == SERVICES["edge"].http_port

    def ours(proc: Proc) -> bool:
        return mark in proc.environ or (default and b"EDGE_PORT=" not in proc.environ)

    spent: dict[str, float] = defaultdict(float)
    spent[MACHINE] = _machine_busy()
    stack = [p for p in procs.values() if _STACK_PROCESS.search(p.cmdline) and ours(p)]
    databases = _databases(stack)
    for proc in procs.values():
        spent[_label(proc, procs, databases, ours, clients)] += proc.cpu
    return spent


def _label(
    proc: Proc,
    procs: dict[int, Proc],
    databases: set[str],
    ours: Callable[[Proc], bool],
    clients: Mapping[int, str],
) -> str:
    if proc.pid in clients or proc.parent in clients:
        return clients.get(proc.pid) or clients[proc.parent]
    if proc.cmdline.startswith("postgres"):
        backend = re.match(r"postgres: (?:[^:]+: )?\S+ (\S+) ", proc.cmdline)
        if backend is None:
            return "postgresql (background)"
        # PostgreSQL's backends by database: which service's statements cost what.
        return f"pg {backend.group(1).split('_db')[0]}" if backend.group(1) in databases else "other"
    if "redis-server" in proc.cmdline:
        return "redis (shared)"
    if "beam.smp" in proc.cmdline:
        return "rabbitmq (shared)"
    for _ in range(5):  # a granian worker counts for the service that started it
        if (found := _STACK_PROCESS.search(proc.cmdline)) and ours(proc):
            return found.group(1)
        if proc.parent not in procs:
            break
        proc = procs[proc.parent]
    return "other"


def spent_between(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each part spent between two readings (a part that ended in between is left out)."""
    return {
        part: after[part] - before.get(part, 0.0) for part in after if after[part] > before.get(part, 0.0)
    }


Reading = tuple[float, dict[str, float]]
"""A `cpu_by_part` reading and the wall-clock time (seconds since the epoch) it was taken."""


def spent_during(readings: list[Reading], start: float, end: float) -> dict[str, float]:
    """CPU each part spent over at least [start, end]: from the last reading at or before `start`
    (else the first) to the first at or after `end` (else the last). "other" is everything else the
    machine did meanwhile."""
    before = [r for r in readings if r[0] <= start] or readings[:1]
    after = [r for r in readings if r[0] >= end] or readings[-1:]
    spent = spent_between(before[-1][1], after[0][1])
    machine = spent.pop(MACHINE, None)
    if machine is not None:
        spent["other"] = max(0.0, machine - sum(v for k, v in spent.items() if k != "other"))
    return spent


def busy_over_time(readings: list[Reading]) -> list[tuple[float, float, float]]:
    """(time, cores busy with the stack and its load generator, cores busy with anything else) between
    each two readings, at the later one's time: what shows another engineer's work stealing the CPU."""
    busy = []
    for (earlier, before), (later, after) in itertools.pairwise(readings):
        spent = spent_between(before, after)
        machine = spent.pop(MACHINE, 0.0)
        spent.pop("other", None)
        stack = sum(spent.values())
        elapsed = later - earlier
        if elapsed > 0:
            busy.append((later, stack / elapsed, max(0.0, machine - stack) / elapsed))
    return busy
