"""The stack as `make run` starts it (on the test ports), driven only through the edge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.stack import running_stack

# Every e2e request comes from 127.0.0.1 and the seed accounts are shared, so the stack runs with the
# limits a load test would set; tests/e2e/test_edge.py still shows the per-user limit at work.
STACK_ENVIRONMENT = {
    "RATE_LIMIT_IP_PER_HOUR": "1000000",
    "RATE_LIMIT_USER_PER_MINUTE": "600",
    "EDGE_RATE_LIMIT_LOGIN": "off",
    "EDGE_RATE_LIMIT_MAIL": "off",
}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_stack(STACK_ENVIRONMENT, tmp_path_factory.mktemp("stack-logs")) as running:
        yield {"edge": running.url("edge"), "mail": running.url("mailsink")}


@pytest.fixture
async def edge(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["edge"], timeout=10) as client:
        yield client


@pytest.fixture
async def mail(stack: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack["mail"], timeout=10) as client:
        yield client
