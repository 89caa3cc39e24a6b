"""The stack as `make run` starts it (on the test ports), driven only through the edge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from kit import settings
from tests.stack import OPEN_LIMITS, running_stack

# Every process traces into the dev trace sink, spans sent within 0.2 s, keeping `make run`'s 1% of the
# traces (shop.stack) and every one a client asks for (tests/e2e/test_traces.py).
TRACED = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": settings.service_url("tracesink"),
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_stack({**OPEN_LIMITS, **TRACED}, tmp_path_factory.mktemp("stack-logs")) as running:
        yield {
            "edge": running.url("edge"),
            "mail": running.url("mailsink"),
            "traces": running.url("tracesink"),
        }


@pytest.fixture
async def edge(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["edge"], timeout=10) as client:
        yield client


@pytest.fixture
async def mail(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["mail"], timeout=10) as client:
        yield client
