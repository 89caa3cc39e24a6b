"""kit.near: versioned values kept in the process until Redis reports their namespace changed."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from kit.cache import Cache, Client, connect
from kit.near import NearCache
from tests.support import eventually, patient_redis


def namespace() -> str:
    return f"test:near:{uuid.uuid4().hex}"


async def stored(redis: Client, ns: str, value: bytes) -> None:
    """What a writer does: bump the namespace and store the value under its new version."""
    await Cache(redis, "writer").bump(ns)
    version = (await redis.get(ns) or b"0").decode()
    await redis.set(f"{ns}:v{version}:detail", value, ex=60)


async def test_a_repeated_hit_is_answered_from_the_process(redis: Client) -> None:
    cache, ns = Cache(redis, "t"), namespace()
    await stored(redis, ns, b"lamp")
    assert await cache.cached("detail", ns) == b"lamp"  # from Redis, then kept
    # Deleted behind the cache's back (its namespace's version unchanged, so no invalidation): still
    # answered, so the answer came from the process.
    await redis.delete(f"{ns}:v{(await redis.get(ns) or b'0').decode()}:detail")
    assert await cache.cached("detail", ns) == b"lamp"
    assert cache.hits == 2


async def test_this_processs_bump_is_read_at_once(redis: Client) -> None:
    cache, ns = Cache(redis, "t"), namespace()
    await stored(redis, ns, b"old")
    assert await cache.cached("detail", ns) == b"old"
    await cache.bump(ns)
    assert await cache.cached("detail", ns) is None  # the new version holds nothing yet


async def test_another_processs_write_reaches_this_process_through_redis(redis: Client) -> None:
    other = connect(patient_redis(os.environ["REDIS_URL"]))  # a client, a lane, a near cache of its own
    cache, ns = Cache(redis, "t"), namespace()
    await stored(redis, ns, b"old")
    assert await cache.cached("detail", ns) == b"old"
    await stored(other, ns, b"new")

    async def sees_new() -> bool:
        return await cache.cached("detail", ns) == b"new"

    await eventually(sees_new, within=5)  # pushed: without it, never
    await other.aclose()


async def test_a_lost_connection_forgets_everything_it_was_told_to_track(redis: Client) -> None:
    cache, ns = Cache(redis, "t"), namespace()
    await stored(redis, ns, b"lamp")
    assert await cache.cached("detail", ns) == b"lamp"
    assert redis.lane.near is not None and redis.lane.near.values
    lane_id = await redis.lane.execute("CLIENT", "ID")
    await redis.client_kill_filter(_id=lane_id)

    async def emptied() -> bool:
        assert redis.lane.near is not None
        return not redis.lane.near.values

    await eventually(emptied, within=5)


async def test_an_invalidation_that_arrives_with_a_lookups_answer_keeps_nothing() -> None:
    # A fake Redis answers the lookup and, in the same packet, invalidates its namespace (a bump that
    # came right after the read): the answer is returned but not kept.
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if not line.startswith(b"*"):
                continue
            args = [await reader.readline() for _ in range(2 * int(line[1:]))][1::2]
            if args[0].strip().upper() == b"EVALSHA":
                writer.write(
                    b"*2\r\n$1\r\n5\r\n$4\r\nlamp\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntest:ns\r\n"
                )
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    client = connect(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0")
    cache = Cache(client, "t")
    assert await cache.cached("detail", "test:ns") == b"lamp"
    assert client.lane.near is not None and client.lane.near.get("test:ns", "detail") is None
    await client.aclose()
    server.close()


@pytest.mark.offline
def test_the_near_cache_keeps_its_size_by_dropping_the_oldest_namespaces() -> None:
    near = NearCache(max_bytes=10)
    for n in range(4):
        near.put(f"ns{n}", "k", b"1234", near.epoch)
    assert list(near.values) == ["ns2", "ns3"] and near.size == 8
    near.forget([b"ns2"])
    assert list(near.values) == ["ns3"] and near.size == 4
    stale = near.epoch - 1
    near.put("ns4", "k", b"1", stale)  # looked up before that invalidation: not kept
    assert near.get("ns4", "k") is None
    near.forget(None)
    assert not near.values and near.size == 0
