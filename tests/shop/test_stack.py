"""How `make run` lays the stack out: instances and their ports, and PgBouncer in front of PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from kit import db, settings
from kit.supervise import Program, read_procfile
from shop.stack import PORT_STEP, plan, scaled
from tests.conftest import PORT_OFFSET
from tests.servers import own_pgbouncer, own_postgres

pytestmark = pytest.mark.offline

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def by_name(programs: list[Program]) -> dict[str, Program]:
    return {program.name: program for program in programs}


def test_without_scale_the_stack_is_the_procfile() -> None:
    programs = read_procfile(PROCFILE)
    assert scaled(programs, {}) == programs


def test_scale_runs_more_instances_on_their_own_ports_and_the_others_find_them() -> None:
    programs = by_name(scaled(read_procfile(PROCFILE), {"SCALE_ORDER": "2", "SCALE_INVENTORY": "3"}))
    assert {"order", "order.2", "inventory", "inventory.2", "inventory.3"} <= set(programs)
    assert "auth.2" not in programs and "edge.2" not in programs
    assert programs["order.2"].env["ORDER_PORT"] == str(5003 + PORT_STEP)
    assert programs["inventory.3"].env["INVENTORY_GRPC_PORT"] == str(5106 + 2 * PORT_STEP)
    assert "ORDER_PORT" not in programs["order"].env  # the first keeps the contract's ports
    edge = programs["edge"].env
    assert edge["EDGE_CLUSTER_ORDER"] == "http://127.0.0.1:5003,http://127.0.0.1:5023"
    assert programs["order"].env["ORDER_INVENTORY_GRPC_URL"] == (
        "ipv4:127.0.0.1:5106,127.0.0.1:5126,127.0.0.1:5146"
    )


def test_every_process_traces_to_the_dev_sink_at_one_percent_unless_told_otherwise(tmp_path: Path) -> None:
    sink = settings.service_url("tracesink", {})
    for program in plan(PROCFILE, {}, tmp_path):
        assert program.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == sink, program.name
        assert program.env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert program.env["OTEL_TRACES_SAMPLER_ARG"] == "0.01"
    # What the environment says wins (inherited as it is): here tracing off, and every trace kept.
    told = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_SAMPLER_ARG": "1"}
    for program in plan(PROCFILE, told, tmp_path):
        assert not told.keys() & program.env.keys(), program.name
        assert program.env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"


def test_scale_is_bounded() -> None:
    with pytest.raises(ValueError, match="SCALE_ORDER must be between 1 and 4"):
        scaled(read_procfile(PROCFILE), {"SCALE_ORDER": "9"})


def test_pgbouncer_stands_first_and_every_pool_goes_through_it(tmp_path: Path) -> None:
    programs = plan(PROCFILE, {"PGBOUNCER": "1", "PGBOUNCER_PORT": "7432"}, tmp_path)
    assert programs[0].name == "pgbouncer"
    order = by_name(programs)["order"].env
    assert order["POSTGRES_URL"] == "postgresql://postgres@127.0.0.1:7432"
    assert order["POSTGRES_DIRECT_URL"] == "postgresql://postgres@127.0.0.1:5432"
    assert "pool_mode = transaction" in (tmp_path / "pgbouncer-7432" / "pgbouncer.ini").read_text()


@pytest.mark.skipif(
    shutil.which("pgbouncer") is None, reason="PgBouncer is not installed (.ci/run installs it)"
)
async def test_pools_through_pgbouncer_share_few_server_connections_without_statement_errors(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o755)  # noqa: ASYNC240 (PgBouncer runs as postgres when started by root)
    async with (
        own_postgres(5435 + PORT_OFFSET) as server,
        own_pgbouncer(server.url, 6435 + PORT_OFFSET, tmp_path) as bouncer,
    ):
        await db.ensure_database(f"{server.url}/bounced")
        pools = [
            await db.create_pool(f"{bouncer.url}/bounced", 1, 10, statement_cache_size=0) for _ in range(3)
        ]
        async with pools[0].acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS hits (n int)")

        async def work(pool: asyncpg.Pool, n: int) -> int:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute("INSERT INTO hits (n) VALUES ($1)", n)
                return int(await conn.fetchval("SELECT count(*) FROM hits WHERE n <= $1", n))

        counts = await asyncio.gather(*(work(pools[n % 3], n) for n in range(300)))
        probe = await asyncpg.connect(f"{server.url}/postgres")
        server_side = await probe.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = 'bounced'")
        await probe.close()
        for pool in pools:
            await pool.close()
    assert all(count >= 1 for count in counts)
    # Thirty client connections at most (three pools of ten), PgBouncer's ten at most to the server.
    assert 1 <= server_side <= 10
