"""Rate limits: exact across processes through Redis, local on the hot path, alive without Redis."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from edge.ratelimit import BACKOFF_MIN, Limiter, Policy
from edge.server import Edge
from tests.edge.conftest import StartEdge
from tests.edge.support import WAIT, Upstream, dead_url, edge_config, make_token, scrape
from tests.processes import free_port, started
from tests.servers import own_redis
from tests.support import eventually

REDIS_URL = os.environ["REDIS_URL"]


def fresh(name: str, limit: int, period: float) -> Policy:
    """A policy under a name no other test (or earlier run) has used, so Redis holds nothing of it."""
    return Policy(f"{name}-{uuid.uuid4().hex[:8]}", limit, period)


@pytest.fixture(autouse=True)
async def forget_limits() -> AsyncIterator[None]:
    """Every test starts and ends with no limit state in the test run's Redis database."""

    async def forget() -> None:
        redis = Redis.from_url(REDIS_URL)
        keys = [
            key
            async for key in redis.scan_iter("edge:rl:*")
            if b"/" in key and not key.count(b":1000000000/")
        ]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    await forget()
    yield
    await forget()


@pytest.fixture
async def limiters() -> AsyncIterator[list[Limiter]]:
    started: list[Limiter] = []
    yield started
    for limiter in started:
        await limiter.close()


async def limiter_for(started: list[Limiter], *policies: Policy, url: str | None = REDIS_URL) -> Limiter:
    """A started limiter whose Redis calls may take 5 s, not 0.25: a loaded machine can outlast the
    edge's own timeout, and these tests are not about a slow Redis (those build their Limiter)."""
    limiter = Limiter(url, list(policies), timeout=5.0)
    await limiter.start()
    started.append(limiter)
    return limiter


async def allowed(limiter: Limiter, policy: Policy, key: str) -> bool:
    state = limiter.state(policy.name)
    wait = limiter.check(state, key)
    if wait is None:
        wait = await limiter.acquire(state, key)
    return wait == 0.0


async def test_two_processes_share_a_limit_exactly(limiters: list[Limiter]) -> None:
    policy = fresh("user", 100, 3600)
    first, second = await limiter_for(limiters, policy), await limiter_for(limiters, policy)
    answers = [await allowed((first, second)[i % 2], policy, "u1") for i in range(101)]
    assert answers == [True] * 100 + [False]
    # Both refuse from then on, and a refusal is remembered locally rather than asked again.
    assert not await allowed(first, policy, "u1")
    assert first.check(first.state(policy.name), "u1") is not None


async def test_a_caller_far_from_its_limit_is_served_from_memory(limiters: list[Limiter]) -> None:
    policy = fresh("user", 1000, 60)
    limiter = await limiter_for(limiters, policy)
    state = limiter.state(policy.name)
    assert limiter.check(state, "u2") is None  # never seen: only Redis can tell
    assert await limiter.acquire(state, "u2") == 0.0
    # The lease covers the next requests without any await.
    assert all(limiter.check(state, "u2") == 0.0 for _ in range(50))


async def test_callers_are_limited_independently(limiters: list[Limiter]) -> None:
    policy = fresh("ip", 3, 3600)
    limiter = await limiter_for(limiters, policy)
    assert [await allowed(limiter, policy, "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert await allowed(limiter, policy, "10.0.0.2")


async def test_an_idle_lease_hands_its_tokens_back(limiters: list[Limiter]) -> None:
    policy = fresh("user", 100, 3600)
    holder = await limiter_for(limiters, policy)
    other = await limiter_for(limiters, policy)
    assert await allowed(holder, policy, "u3")  # leases several tokens, spends one
    holder.sweep()  # it was used since the last sweep: kept
    holder.sweep()  # not used since: handed back
    await asyncio.sleep(0.2)  # the hand-back is sent by the batching loop
    answers = [await allowed(other, policy, "u3") for _ in range(100)]
    assert answers == [True] * 99 + [False]


async def test_a_refused_caller_learns_when_to_retry(limiters: list[Limiter]) -> None:
    policy = fresh("user", 2, 60)
    limiter = await limiter_for(limiters, policy)
    state = limiter.state(policy.name)
    assert await allowed(limiter, policy, "u4") and await allowed(limiter, policy, "u4")
    wait = await limiter.acquire(state, "u4")
    # Two per minute: the next token comes 30 s after the first was spent.
    assert 29 < wait <= 30


async def test_without_redis_each_process_limits_on_its_own(limiters: list[Limiter]) -> None:
    policy = fresh("user", 4, 60)
    limiter = Limiter(dead_url().replace("http", "redis"), [policy], share=2)
    await limiter.start()
    limiters.append(limiter)
    started = time.perf_counter()
    # Two local workers share the limit: this one allows half of it.
    assert [await allowed(limiter, policy, "u5") for _ in range(3)] == [True, True, False]
    assert time.perf_counter() - started < 1.0
    assert not limiter.redis_up
    assert limiter.fallbacks == 3


async def test_redis_is_reported_down_until_it_answers_again(limiters: list[Limiter]) -> None:
    """Readiness and the store gauge said up again as soon as a back-off was over, before anything was
    asked: an edge without traffic reported a lost Redis up for good, a busy one flapped."""
    policy = fresh("user", 4, 60)
    limiter = Limiter(dead_url().replace("http", "redis"), [policy])
    await limiter.start()
    limiters.append(limiter)
    assert limiter.redis_up
    assert await allowed(limiter, policy, "u8")
    assert not limiter.redis_up
    # Past the back-off, nothing asked since: what is known of Redis is still that it did not answer.
    await asyncio.sleep(BACKOFF_MIN * 1.5)
    assert not limiter.redis_up


async def test_an_idle_limiter_reports_redis_up_once_it_answers_again(limiters: list[Limiter]) -> None:
    """Without a request after Redis came back, readiness and the gauge said down until the next one."""
    port = free_port()
    policy = fresh("user", 100, 3600)
    limiter = await limiter_for(limiters, policy, url=f"redis://127.0.0.1:{port}/0")
    assert await allowed(limiter, policy, "u9")
    assert not limiter.redis_up
    async with own_redis(port):

        async def reported_up() -> bool:
            return limiter.redis_up

        # Within the next back-off's end, however long the server took to start (they double, to 10 s).
        await eventually(reported_up, within=15)


async def test_closing_answers_the_callers_still_waiting_for_redis() -> None:
    """A caller waits on the batch sent to Redis; the limiter closes (the edge stops) before Redis
    answers. The batch is cut short, and the caller used to wait until its connection was aborted: it
    gets the per-process limit instead, as when Redis is down, and so does whoever asks later."""
    asked = asyncio.Event()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            asked.set()
        writer.close()

    silent_redis = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = silent_redis.sockets[0].getsockname()[1]
    policy = fresh("user", 4, 60)
    limiter = Limiter(f"redis://127.0.0.1:{port}/0", [policy])
    await limiter.start()
    state = limiter.state(policy.name)
    try:
        waiting = asyncio.create_task(limiter.acquire(state, "u7"))
        async with asyncio.timeout(WAIT):
            await asked.wait()
        await limiter.close()
        async with asyncio.timeout(WAIT):
            assert await waiting == 0.0
            assert await limiter.acquire(state, "u7") == 0.0
        assert limiter.fallbacks == 2
    finally:
        silent_redis.close()


@pytest.fixture
def upstream_urls(upstreams: dict[str, Upstream]) -> dict[str, str]:
    return {name: server.url for name, server in upstreams.items()}


def assert_rate_limited(response: httpx.Response, policy: str, limit: int, window: int) -> None:
    assert response.status_code == 429
    assert response.json() == {"error": "RateLimited", "message": response.json()["message"], "details": []}
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    assert response.headers["ratelimit-policy"] == f'"{policy}";q={limit};w={window}'
    assert response.headers["ratelimit"] == f'"{policy}";r=0;t={retry_after}'
    assert response.headers["x-request-id"]


async def test_the_101st_request_of_a_user_in_a_minute_is_refused_across_two_edges(
    upstream_urls: dict[str, str], start_edge: StartEdge, upstreams: dict[str, Upstream]
) -> None:
    config = edge_config(upstream_urls, RATE_LIMIT_USER_PER_MINUTE="100")
    edges: list[Edge] = [await start_edge(config), await start_edge(config)]
    token = make_token({"sub": f"limited-{uuid.uuid4()}"})
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{edge.port}", headers={"Authorization": f"Bearer {token}"}
        )
        for edge in edges
    ]
    before = len(upstreams["order"].requests)
    started = time.perf_counter()
    answers = [await clients[i % 2].get("/api/orders") for i in range(101)]
    elapsed = time.perf_counter() - started
    statuses = [answer.status_code for answer in answers]
    # A token comes back every 0.6 s: only a run slower than that (a loaded machine) may see more.
    if elapsed < 0.6:
        assert statuses == [200] * 100 + [429]
    else:
        assert 100 <= statuses.count(200) <= 100 + elapsed / 0.6
    if 429 in statuses:
        assert_rate_limited(answers[statuses.index(429)], "user", 100, 60)
    assert len(upstreams["order"].requests) - before == statuses.count(200)
    for client in clients:
        await client.aclose()


async def test_anonymous_requests_are_limited_per_client_ip(
    upstream_urls: dict[str, str], start_edge: StartEdge
) -> None:
    edge: Edge = await start_edge(edge_config(upstream_urls, RATE_LIMIT_IP_PER_HOUR="3"))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        statuses = [(await client.get("/api/products")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        assert_rate_limited(await client.get("/api/products"), "ip", 3, 3600)
        # Forged tokens do not escape the IP's limit: they count as anonymous, and are refused as such.
        forged = make_token(secret="a-different-secret-of-a-decent-length-0123456789")
        refused = await client.get("/api/products", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 429
        # A signed-in user from the same address has a budget of their own.
        served = await client.get("/api/products", headers={"Authorization": f"Bearer {make_token()}"})
        assert served.status_code == 200


async def test_a_route_limit_is_tighter_than_the_global_one(
    upstream_urls: dict[str, str], start_edge: StartEdge
) -> None:
    edge: Edge = await start_edge(edge_config(upstream_urls, EDGE_RATE_LIMIT_LOGIN="2/60"))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        body = {"email": "a@shop.local", "password": "wrong-password"}
        statuses = [(await client.post("/api/auth/login", json=body)).status_code for _ in range(2)]
        assert statuses == [200, 200]
        assert_rate_limited(await client.post("/api/auth/login", json=body), "login", 2, 60)
        assert (await client.get("/api/products")).status_code == 200


async def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(
    upstream_urls: dict[str, str], start_edge: StartEdge
) -> None:
    def from_client(address: str) -> dict[str, str]:
        # A client's own spoofed entry, then what the proxy saw.
        return {"X-Forwarded-For": f"203.0.113.99, {address}"}

    trusting: Edge = await start_edge(
        edge_config(upstream_urls, RATE_LIMIT_IP_PER_HOUR="1", EDGE_TRUSTED_PROXIES="127.0.0.0/8")
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{trusting.port}") as client:
        assert (await client.get("/api/products", headers=from_client("198.51.100.7"))).status_code == 200
        assert (await client.get("/api/products", headers=from_client("198.51.100.8"))).status_code == 200
        assert (await client.get("/api/products", headers=from_client("198.51.100.7"))).status_code == 429

    trusting_nobody: Edge = await start_edge(edge_config(upstream_urls, RATE_LIMIT_IP_PER_HOUR="1"))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{trusting_nobody.port}") as client:
        assert (await client.get("/api/products", headers=from_client("198.51.100.9"))).status_code == 200
        # Another forwarded address changes nothing: the peer is the client.
        assert (await client.get("/api/products", headers=from_client("198.51.100.10"))).status_code == 429


async def test_serves_with_per_process_limits_while_redis_is_down(
    upstream_urls: dict[str, str], start_edge: StartEdge
) -> None:
    redis_down = dead_url().replace("http", "redis")
    edge: Edge = await start_edge(
        edge_config(upstream_urls, REDIS_URL=redis_down, RATE_LIMIT_IP_PER_HOUR="5")
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{edge.port}") as client:
        statuses = [(await client.get("/api/products")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["rateLimitStore"].startswith("down")
        assert "edge_rate_limit_store_up 0" in await scrape(edge)


async def test_limits_come_back_to_redis_when_it_returns(limiters: list[Limiter]) -> None:
    port = free_port()
    policy = fresh("user", 100, 3600)
    limiter = await limiter_for(limiters, policy, url=f"redis://127.0.0.1:{port}/0")
    assert await allowed(limiter, policy, "u6")
    assert limiter.fallbacks == 1
    async with own_redis(port):
        redis = Redis(port=port)

        async def counted_in_redis() -> bool:
            await allowed(limiter, policy, f"u6-{uuid.uuid4().hex[:6]}")
            return bool(await redis.keys(f"edge:rl:{policy.name}:*"))

        # After its back-off the limiter asks Redis again.
        await eventually(counted_in_redis, within=5)
        assert limiter.redis_up
        await redis.aclose()


async def test_two_worker_processes_of_python_m_edge_share_the_limit(
    upstream: Upstream, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "EDGE_PORT": str(port),
        "EDGE_WORKERS": "2",
        "EDGE_HEALTH_INTERVAL": "0",
        "EDGE_ACCESS_LOG": "1",
        "RATE_LIMIT_USER_PER_MINUTE": "100",
        "EDGE_CLUSTER_ORDER": upstream.url,
        "LOG_LEVEL": "INFO",
    }
    headers = {"Authorization": f"Bearer {make_token({'sub': f'two-workers-{uuid.uuid4()}'})}"}
    access_log, edge_log = tmp_path / "access.log", tmp_path / "edge.log"
    with started("-m", "edge", env=env, log=access_log, errors=edge_log) as edge:

        async def both_listening() -> bool:
            return edge_log.read_text().count("listening on") >= 2

        # Both workers must be listening before the requests start, or one would take them all.
        await eventually(both_listening)
        # No keep-alive: a connection per request, so the kernel spreads them over both workers.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers=headers,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            started_at = time.perf_counter()
            statuses = [(await client.get("/api/orders")).status_code for _ in range(101)]
            elapsed = time.perf_counter() - started_at
        edge.stop()
    # A token comes back every 0.6 s: only a run slower than that may see one more.
    if elapsed < 0.6:
        assert statuses == [200] * 100 + [429]
    else:
        assert statuses.count(200) <= 100 + elapsed / 0.6
    served_by = {
        entry["worker"]
        for entry in map(orjson.loads, access_log.read_bytes().splitlines())
        if entry["status"] == 200
    }
    assert len(served_by) == 2
