from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from kit.cache import Cache, connect
from tests.processes import free_port
from tests.servers import own_redis
from tests.support import eventually, patient_redis


class Source:
    """A stand-in for the database that counts its loads."""

    def __init__(self, value: bytes | None = b'{"name":"lamp"}', delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.loads = 0

    async def load(self) -> bytes | None:
        self.loads += 1
        await asyncio.sleep(self.delay)
        return self.value


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_a_miss_loads_and_the_next_read_is_a_hit(redis: Redis) -> None:
    cache, source, k = Cache(redis, "t"), Source(), key()
    assert await cache.get_or_load(k, 60, source.load) == b'{"name":"lamp"}'
    assert await cache.get_or_load(k, 60, source.load) == b'{"name":"lamp"}'
    assert (source.loads, cache.hits, cache.misses) == (1, 1, 1)
    assert 0 < await redis.ttl(k) <= 60


async def test_a_hundred_concurrent_misses_cause_one_load(redis: Redis) -> None:
    cache, source, k = Cache(redis, "t"), Source(delay=0.05), key()
    values = await asyncio.gather(*(cache.get_or_load(k, 60, source.load) for _ in range(100)))
    assert set(values) == {b'{"name":"lamp"}'} and source.loads == 1


async def test_concurrent_misses_in_two_processes_cause_one_load(redis: Redis) -> None:
    # Two Cache objects stand for two processes: they share Redis but not their in-flight table.
    first, second, source, k = Cache(redis, "a"), Cache(redis, "b"), Source(delay=0.1), key()
    values = await asyncio.gather(*(c.get_or_load(k, 60, source.load) for c in (first, second) * 10))
    assert set(values) == {b'{"name":"lamp"}'} and source.loads == 1


async def test_a_process_waiting_on_anothers_load_takes_its_value_even_when_it_lands_between_two_polls(
    redis: Redis,
) -> None:
    # The owner stores the value and drops its lock right after the waiter's poll found no value:
    # the waiter must find the value, not take the lock's absence as "load it yourself".
    polled, stored = asyncio.Event(), asyncio.Event()
    waiting_client = connect(patient_redis(os.environ["REDIS_URL"]))
    read = waiting_client.get

    async def poll(name: str) -> bytes | None:
        value: bytes | None = await read(name)
        if value is None and not polled.is_set():
            polled.set()
            await stored.wait()
        return value

    waiting_client.get = poll  # type: ignore[method-assign]
    source, k = Source(), key()

    async def load() -> bytes | None:
        await polled.wait()
        return await source.load()

    owner = asyncio.create_task(Cache(redis, "a").get_or_load(k, 60, load))

    async def locked() -> bool:
        return bool(await redis.exists(f"lock:{k}"))

    await eventually(locked)
    waiter = asyncio.create_task(Cache(waiting_client, "b").get_or_load(k, 60, load))
    assert await owner == b'{"name":"lamp"}'
    stored.set()
    assert await waiter == b'{"name":"lamp"}'
    assert source.loads == 1
    await waiting_client.aclose()


async def test_nothing_is_cached_for_a_missing_thing(redis: Redis) -> None:
    cache, source, k = Cache(redis, "t"), Source(value=None), key()
    assert await cache.get_or_load(k, 60, source.load) is None
    assert await cache.get_or_load(k, 60, source.load) is None
    assert source.loads == 2 and await redis.exists(k) == 0


async def test_a_failing_load_reaches_every_waiter_and_is_not_cached(redis: Redis) -> None:
    cache, k = Cache(redis, "t"), key()

    async def broken() -> bytes:
        await asyncio.sleep(0.02)
        raise ConnectionError("database down")

    results = await asyncio.gather(
        *(cache.get_or_load(k, 60, broken) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await cache.get_or_load(k, 60, Source().load) == b'{"name":"lamp"}'


async def test_bumping_a_namespace_invalidates_all_its_keys(redis: Redis) -> None:
    cache, ns = Cache(redis, "t"), f"test:list:{uuid.uuid4().hex}"
    old, new = Source(b"old"), Source(b"new")
    assert await cache.get_or_load("page=1", 60, old.load, namespace=ns) == b"old"
    assert await cache.get_or_load("page=2", 60, old.load, namespace=ns) == b"old"
    assert await cache.get_or_load("page=1", 60, new.load, namespace=ns) == b"old"
    await cache.bump(ns)
    assert await cache.get_or_load("page=1", 60, new.load, namespace=ns) == b"new"
    assert await cache.get_or_load("page=2", 60, new.load, namespace=ns) == b"new"
    assert (old.loads, new.loads) == (2, 2)


async def test_with_redis_down_reads_come_from_the_source_without_errors() -> None:
    dead = connect("redis://127.0.0.1:1/0")
    cache, source = Cache(dead, "t"), Source()
    assert await cache.get_or_load(key(), 60, source.load) == b'{"name":"lamp"}'
    assert await cache.get_or_load(key(), 60, source.load, namespace="test:ns") == b'{"name":"lamp"}'
    await cache.set(key(), b"x", 60)
    await cache.delete(key())
    await cache.bump("test:ns")
    assert source.loads == 2 and cache.errors == 1  # after one failure Redis is left alone for a second
    await dead.aclose()


async def test_a_redis_that_stops_answering_costs_one_bounded_wait_and_the_client_keeps_its_timeouts() -> (
    None
):
    async with own_redis(free_port()) as url:
        redis, admin = connect(url), connect(url)
        cache, source = Cache(redis, "t"), Source()
        warm = key()
        assert await cache.get_or_load(warm, 60, source.load) == b'{"name":"lamp"}'  # connected, cached
        # Redis takes commands and answers none for 1.5 s.
        await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        started = time.monotonic()
        # The hot path's connection gives up after the socket timeout (0.5 s): the source answers.
        assert await cache.get_or_load(warm, 60, source.load) == b'{"name":"lamp"}'
        assert (source.loads, cache.errors) == (2, 1)
        # The client's own commands, beside the lane, are bounded by the same timeout.
        with pytest.raises(RedisTimeoutError):
            await redis.get("anything")
        assert time.monotonic() - started < 1.4
        await redis.aclose()
        await admin.aclose()


async def test_a_namespace_version_can_expire_and_never_comes_back_to_a_cached_one(redis: Redis) -> None:
    cache, ns = Cache(redis, "t"), f"test:entity:{uuid.uuid4().hex}"
    await cache.bump(ns, keep=30)
    assert 0 < await redis.ttl(ns) <= 30
    assert await cache.get_or_load("json", 60, Source(b"old").load, namespace=ns) == b"old"
    await redis.delete(ns)  # the counter expired while an entry of its version is still cached
    await cache.bump(ns)
    assert await cache.get_or_load("json", 60, Source(b"new").load, namespace=ns) == b"new"


async def test_versioned_hits_survive_redis_forgetting_its_scripts(redis: Redis) -> None:
    cache, source, k = Cache(redis, "t"), Source(), key()
    namespace = f"test:ns:{uuid.uuid4().hex}"
    await cache.get_or_load(k, 60, source.load, namespace=namespace)
    await redis.script_flush()  # as after a Redis restart
    assert await cache.get_or_load(k, 60, source.load, namespace=namespace) == b'{"name":"lamp"}'
    assert source.loads == 1 and cache.hits == 1 and cache.errors == 0


async def test_reads_cancelled_midway_never_hand_their_answer_to_a_later_read(redis: Redis) -> None:
    cache, keys = Cache(redis, "t"), [key() for _ in range(40)]
    for k in keys:
        await redis.set(k, k.encode(), ex=60)
    for steps in range(1, 8):  # cancel at different points: before the command is sent, before its reply
        reads = [asyncio.create_task(cache.get_or_load(k, 60, Source().load)) for k in keys]
        for _ in range(steps):
            await asyncio.sleep(0)
        for read in reads[::2]:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
    answers = await asyncio.gather(*(cache.get_or_load(k, 60, Source().load) for k in keys))
    assert answers == [k.encode() for k in keys]
