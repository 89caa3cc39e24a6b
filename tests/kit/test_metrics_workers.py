"""kit.serve with two workers: a scrape of either one counts the requests both of them answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, started
from tests.support import eventually

pytestmark = pytest.mark.offline

REQUESTS = 40


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    # Whatever folder the test run has, the served process makes its own (kit.serve.share_metrics).
    env = {"SANDBOX_PORT": str(port), "SANDBOX_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": ""}
    serve = "from kit.serve import run; run('tests.kit.metrics_app:app', 'sandbox')"
    with started("-c", serve, env=env, log=tmp_path / "served.log"):
        yield f"http://127.0.0.1:{port}"


def _served(scrape: str) -> float:
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if sample.name == "shop_http_requests_total" and sample.labels.get("route") == "/worker":
                return sample.value
    return 0.0


async def test_a_scrape_of_either_worker_sums_what_both_answered(two_workers: str) -> None:
    async def fresh_get(path: str) -> httpx.Response | None:
        # A new connection each time: the kernel spreads connections over the workers (SO_REUSEPORT).
        async with httpx.AsyncClient(base_url=two_workers) as client:
            try:
                return await client.get(path)
            except httpx.TransportError:
                return None

    workers: set[str] = set()
    sent = 0

    async def both_answered() -> bool:
        nonlocal sent
        answer = await fresh_get("/worker")
        if answer is not None:
            assert answer.status_code == 200
            sent += 1
            workers.add(answer.text)
        return len(workers) == 2 and sent >= REQUESTS

    await eventually(both_answered, within=20, interval=0)
    scrapes = await asyncio.gather(*(fresh_get("/metrics") for _ in range(6)))
    assert [_served(s.text) if s else None for s in scrapes] == [sent] * len(scrapes)
