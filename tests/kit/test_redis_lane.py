"""kit.redis_lane: the cache's own pipelined Redis connection, against the shared Redis (its test db)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kit.cache import Client, connect
from kit.redis_lane import RedisLane, bulk, pack, prefix
from tests.support import eventually, patient_redis


def key() -> str:
    return f"test:lane:{uuid.uuid4().hex}"


@pytest.mark.offline
def test_commands_are_packed_as_resp_arrays_of_bulk_strings() -> None:
    assert pack("SET", "k", b"v\r\n", 5) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$1\r\n5\r\n"
    assert prefix(3, "GET") + bulk("k") + bulk("é") == pack("GET", "k", "é")


async def test_concurrent_commands_on_one_connection_each_get_their_own_reply(redis: Client) -> None:
    keys = [key() for _ in range(300)]
    for k in keys:
        await redis.set(k, k.encode() * (1 + len(k) % 50), ex=60)  # replies of different sizes
    replies = await asyncio.gather(*(redis.lane.execute("GET", k) for k in keys))
    assert replies == [k.encode() * (1 + len(k) % 50) for k in keys]


def test_the_lane_runs_on_uvloop_as_the_services_run_it() -> None:
    # uvloop's transports are not asyncio.Transport subclasses: nothing may assume they are.
    async def read_back() -> object:
        client = connect(patient_redis(os.environ["REDIS_URL"]))
        k = key()
        await client.set(k, b"on uvloop", ex=60)
        try:
            return await client.lane.execute("GET", k)
        finally:
            await client.aclose()

    assert uvloop.run(read_back()) == b"on uvloop"


async def test_the_lane_reads_the_clients_database(redis: Client) -> None:
    k = key()
    await redis.set(k, b"here", ex=60)
    assert await redis.lane.execute("GET", k) == b"here"
    kwargs = redis.connection_pool.connection_kwargs
    elsewhere = RedisLane({**kwargs, "db": (int(kwargs.get("db") or 0) + 1) % 16})
    assert await elsewhere.execute("EXISTS", k) == 0
    elsewhere.close()


async def test_an_error_reply_fails_its_command_only(redis: Client) -> None:
    k = key()
    await redis.set(k, b"text", ex=60)
    results: list[object] = await asyncio.gather(
        redis.lane.execute("INCR", k),
        redis.lane.execute("EVALSHA", "0" * 40, 0),
        redis.lane.execute("GET", k),
        return_exceptions=True,
    )
    wrong, unknown, fine = results
    assert isinstance(wrong, ResponseError) and "not an integer" in str(wrong)
    assert isinstance(unknown, NoScriptError)
    assert fine == b"text"


async def test_a_dropped_connection_fails_what_was_in_flight_and_the_next_command_dials_again(
    redis: Client,
) -> None:
    lane_id = await redis.lane.execute("CLIENT", "ID")
    blocked = asyncio.ensure_future(redis.lane.execute("BLPOP", key(), 5))
    await eventually(lambda: redis.client_list(client_id=[lane_id]), within=5)
    await redis.client_kill_filter(_id=lane_id)
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(blocked, 5)
    assert await redis.lane.execute("CLIENT", "ID") != lane_id


async def test_a_server_that_never_answers_times_out_every_command_in_flight() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lane = RedisLane({"host": "127.0.0.1", "port": port, "socket_timeout": 0.2})
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(lane.execute("GET", "k") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RedisTimeoutError) for r in results)
    assert 0.2 <= loop.time() - started < 2
    lane.close()
    server.close()
    for writer in accepted:
        writer.close()
