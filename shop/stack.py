"""`python -m shop.stack [Procfile]`, what `make run` runs: the stack laid out on one machine (how
many instances of each service, on which ports, through PgBouncer or not), kept running by
`kit.supervise`.

- `SCALE=2` runs two instances of every service with a database (`SCALE_ORDER=3` one service). The
  first keeps the contract's ports; instance k listens on them plus `PORT_STEP * (k - 1)`. The edge's
  clusters list every instance, and svc_order balances its gRPC calls over every inventory and
  discount instance (round robin). Instances share their database, Redis and queues: consumers
  compete for messages, outbox relays take rows with SKIP LOCKED, jobs take theirs likewise.
- `PGBOUNCER=1` starts PgBouncer (transaction pooling) on `PGBOUNCER_PORT` (6432) in front of
  PostgreSQL and points every pool at it; LISTEN and migrations go straight to the server
  (`POSTGRES_DIRECT_URL`). Debian's PgBouncer (1.18) keeps no prepared statements across
  transactions, so statements are not cached then (`DB_STATEMENT_CACHE_SIZE=0`).
- Tracing is on (kit.telemetry, edge.spans), to the dev trace sink (Procfile `tracesink`), keeping 1%
  of the traces the edge starts and every one a client asks for with a sampled `traceparent`: the
  `OTEL_*` variables the environment does not set itself (`tracing_defaults`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kit import settings
from kit.supervise import Program, Supervisor, read_procfile
from shop.map import SERVICES

PORT_STEP = 20
# Little enough to cost little (perf/README.md, "Tracing"), yet a trace of whatever is going on.
DEV_SAMPLE = "0.01"
MAX_INSTANCES = 4  # instance 5 of inventory would take svc_inventory's gRPC port band


def instances(env: Mapping[str, str]) -> dict[str, int]:
    """How many instances of each service `SCALE` and `SCALE_<SERVICE>` ask for."""
    default = int(env.get("SCALE") or 1)
    wanted = {}
    for spec in SERVICES.values():
        if spec.database:
            count = int(env.get(f"SCALE_{spec.name.upper()}") or default)
            if not 1 <= count <= MAX_INSTANCES:
                raise ValueError(f"SCALE_{spec.name.upper()} must be between 1 and {MAX_INSTANCES}")
            wanted[spec.name] = count
    return wanted


def _ports(name: str, index: int, env: Mapping[str, str]) -> dict[str, str]:
    config = settings.load(name, env)
    shift = PORT_STEP * index
    ports = {f"{name.upper()}_PORT": str(config.http_port + shift)}
    if config.grpc_port:
        ports[f"{name.upper()}_GRPC_PORT"] = str(config.grpc_port + shift)
    return ports


def scaled(programs: Sequence[Program], env: Mapping[str, str]) -> list[Program]:
    """`programs` with each service repeated as `instances` asks, and the others told where they are."""
    counts = instances(env)
    shared: dict[str, str] = {}
    for name, count in counts.items():
        if count > 1:
            urls = [f"http://127.0.0.1:{_ports(name, i, env)[f'{name.upper()}_PORT']}" for i in range(count)]
            shared[f"EDGE_CLUSTER_{name.upper()}"] = ",".join(urls)
    for name in ("inventory", "discount"):
        if counts[name] > 1:
            grpc_ports = [_ports(name, i, env)[f"{name.upper()}_GRPC_PORT"] for i in range(counts[name])]
            shared[f"ORDER_{name.upper()}_GRPC_URL"] = "ipv4:" + ",".join(
                f"127.0.0.1:{p}" for p in grpc_ports
            )
    planned = []
    for program in programs:
        count = counts.get(program.name, 1)
        for index in range(count):
            name = program.name if index == 0 else f"{program.name}.{index + 1}"
            own = _ports(program.name, index, env) if index else {}
            planned.append(dataclasses.replace(program, name=name, env={**program.env, **shared, **own}))
    return planned


def pgbouncer(folder: Path, env: Mapping[str, str]) -> tuple[Program, dict[str, str]]:
    """PgBouncer as a program with its configuration written to `folder`, and the environment that
    sends every service's pool through it."""
    server = env.get("POSTGRES_URL", settings.POSTGRES_URL).rstrip("/")
    address = server.rsplit("@", 1)[-1]
    host, _, port = address.partition(":")
    listen = env.get("PGBOUNCER_PORT", "6432")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\n"
        # Many client connections (every pool of every instance), few server ones.
        f"max_client_conn = 2000\ndefault_pool_size = {env.get('PGBOUNCER_POOL_SIZE', '10')}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    command = ["pgbouncer", str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]  # it refuses to run as root
    pooled = {
        "POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{listen}",
        "POSTGRES_DIRECT_URL": server,
        "DB_STATEMENT_CACHE_SIZE": "0",
    }
    return Program("pgbouncer", tuple(command)), pooled


def tracing_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """Tracing to the dev trace sink at a 1% sample, less what `env` sets: `OTEL_EXPORTER_OTLP_ENDPOINT=`
    turns it off, `OTEL_TRACES_SAMPLER_ARG=1` keeps every trace."""
    defaults = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": settings.service_url("tracesink", env),
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": DEV_SAMPLE,
    }
    return {name: value for name, value in defaults.items() if name not in env}


def plan(procfile: Path, env: Mapping[str, str], workspace: Path) -> list[Program]:
    """Every program `make run` starts, with the environment each gets beyond the inherited one."""
    traced = tracing_defaults(env)
    programs = [dataclasses.replace(p, env={**traced, **p.env}) for p in read_procfile(procfile)]
    if env.get("PGBOUNCER") == "1":
        bouncer, pooled = pgbouncer(workspace / f"pgbouncer-{env.get('PGBOUNCER_PORT', '6432')}", env)
        programs = [bouncer, *(dataclasses.replace(p, env={**p.env, **pooled}) for p in programs)]
    return scaled(programs, env)


async def main(procfile: Path) -> None:
    supervisor = Supervisor(plan(procfile, os.environ, procfile.parent / ".run"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, supervisor.stop)
    await supervisor.run()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "Procfile").resolve()))
