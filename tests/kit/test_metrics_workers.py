"""kit.serve with two workers: a scrape of either one counts the requests both of them answered."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SANDBOX_PORT": str(port), "SANDBOX_WORKERS": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-c", "from kit.serve import run; run('tests.kit.metrics_app:app', 'sandbox')"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


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
