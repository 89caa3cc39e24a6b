"""PostgreSQL, Redis and RabbitMQ servers of a test's own, on ports of its choosing.

A test that stops, restarts, pauses or flushes a server uses one of these, never the shared servers the
dev stack and other test runs rely on. Each yields once the server answers and is gone afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiormq
import asyncpg
from redis.asyncio import Redis

from shop import stack
from tests.support import eventually

POSTGRES_BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


async def _run(*command: str, env: dict[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {output.decode()[-2000:]}")


def _as_postgres(command: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: the shared machines run tests as root, developers may not."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@dataclass
class OwnPostgres:
    """A throwaway cluster: trust authentication, no fsync, stopped and started at will."""

    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    async def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        )
        await _run(
            *_as_postgres([str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-o", options, *args])
        )

    async def answers(self) -> bool:
        try:
            conn = await asyncpg.connect(f"{self.url}/postgres", timeout=1)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    async def start(self) -> None:
        await self._ctl("-l", str(self.data / "server.log"), "start")
        await eventually(self.answers, within=20)

    async def stop(self, mode: str = "fast") -> None:
        await self._ctl("-m", mode, "stop")

    async def restart(self, mode: str = "fast") -> None:
        """What an operator's `pg_ctlcluster ... restart -m fast` does: every session is cut."""
        await self.stop(mode)
        await self.start()


@contextlib.asynccontextmanager
async def own_postgres(port: int) -> AsyncIterator[OwnPostgres]:
    with tempfile.TemporaryDirectory(prefix="shop-pg-") as folder:
        data = Path(folder) / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        await _run(
            *_as_postgres([str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"])
        )
        server = OwnPostgres(port, data)
        await server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                await server.stop("immediate")


@dataclass
class OwnPgBouncer:
    """PgBouncer in transaction mode as `make run PGBOUNCER=1` starts it (shop.stack), before a server."""

    url: str
    pid: int


@contextlib.asynccontextmanager
async def own_pgbouncer(server_url: str, port: int, folder: Path) -> AsyncIterator[OwnPgBouncer]:
    """PgBouncer on `port` in front of `server_url`, its files and its log in `folder` (readable by
    the user postgres when run as root); yields once it answers, and is gone afterwards."""
    program, pooled = stack.pgbouncer(folder, {"POSTGRES_URL": server_url, "PGBOUNCER_PORT": str(port)})
    with (folder / "pgbouncer.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(*program.command, stdout=log, stderr=log)
    try:

        async def answers() -> bool:
            try:
                conn = await asyncpg.connect(f"{pooled['POSTGRES_URL']}/postgres", statement_cache_size=0)
            except (OSError, asyncpg.PostgresError):
                return False
            await conn.close()
            return True

        await eventually(answers, within=10)
        yield OwnPgBouncer(pooled["POSTGRES_URL"], process.pid)
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def own_redis(port: int) -> AsyncIterator[str]:
    """A Redis server of the test's own on `port`, to pause or stop without touching the shared one;
    yields its URL once it answers."""
    server = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = Redis(port=port)
        await eventually(probe.ping, within=5)
        await probe.aclose()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        await server.wait()


@dataclass
class OwnRabbitMQ:
    """A RabbitMQ node of its own (name, ports, files and Erlang cookie); its broker stops and starts
    while the node stays up, as when an operator runs `rabbitmqctl stop_app`."""

    port: int
    node: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def _ctl(self, *args: str) -> None:
        await _run(str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args, env=self.env)

    async def answers(self) -> bool:
        try:
            connection = await aiormq.connect(self.url)
        except (OSError, aiormq.exceptions.AMQPError):
            return False
        await connection.close()
        return True

    async def stop(self) -> None:
        await self._ctl("stop_app")

    async def vhost(self, name: str) -> str:
        """The URL of a new virtual host `name`, for a second set of queues beside the first."""
        await self._ctl("add_vhost", name)
        await self._ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{name}"

    async def start(self) -> None:
        await self._ctl("start_app")
        await eventually(self.answers, within=30)


@contextlib.asynccontextmanager
async def own_rabbitmq(port: int) -> AsyncIterator[OwnRabbitMQ]:
    with tempfile.TemporaryDirectory(prefix="shop-amqp-") as folder:
        node = f"shop{port}@localhost"
        files = Path(folder)
        (files / "enabled_plugins").write_text("[].\n")
        (files / "rabbitmq-env.conf").write_text("")  # not the machine's (it names the shared node)
        (files / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
        env = {
            **os.environ,
            "HOME": folder,  # its own Erlang cookie
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 1),
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_CONF_ENV_FILE": f"{folder}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq.conf",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_PID_FILE": f"{folder}/pid",
        }
        process = await asyncio.create_subprocess_exec(
            str(RABBITMQ_BIN / "rabbitmq-server"),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        server = OwnRabbitMQ(port, node, env)
        try:
            await eventually(server.answers, within=60, interval=0.5)
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                await server._ctl("stop")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            await process.wait()
