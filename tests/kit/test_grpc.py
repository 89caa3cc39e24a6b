"""kit.grpc: the server job (health, reflection, errors, deadlines, trace context) and client channels."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kit import cache, errors, settings, tracing
from kit.app import Deps
from kit.grpc import GrpcServer, channel
from tests.processes import free_port
from tests.servers import own_redis
from tests.support import eventually

SERVICE = "test.Echo"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _trace(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return tracing.traceparent.get().encode()


async def _missing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise errors.invalid("thing", "must be there")


async def _down(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise asyncpg.CannotConnectNowError("the database system is starting up")


async def _slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(5)
    return b""


def _register(server: grpc.aio.Server, deps: Deps) -> list[str]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in (("Trace", _trace), ("Missing", _missing), ("Down", _down), ("Slow", _slow))
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    return [SERVICE]


@pytest.fixture(scope="module")
async def ch() -> AsyncIterator[grpc.aio.Channel]:
    config = dataclasses.replace(settings.load("inventory"), grpc_port=0)
    server = GrpcServer("test", _register, grace=0.1)
    job = asyncio.create_task(server(Deps(config, None, None, None)))  # type: ignore[arg-type]
    port = await server.started()
    async with channel(f"127.0.0.1:{port}") as opened:
        yield opened
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)


def _call(ch: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return ch.unary_unary(f"/{SERVICE}/{method}")


async def test_the_server_reports_serving_and_lists_its_services(ch: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(ch)
    for name in ("", SERVICE):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    listed = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in [r async for r in listed] for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


async def test_the_callers_trace_continues_into_the_handler(ch: grpc.aio.Channel) -> None:
    tracing.traceparent.set(TRACE)
    seen = (await _call(ch, "Trace")(b"")).decode()
    assert seen.split("-")[1] == TRACE.split("-")[1] and seen != TRACE


@pytest.mark.parametrize(
    ("method", "code", "details"),
    [
        ("Missing", grpc.StatusCode.INVALID_ARGUMENT, "thing: must be there"),
        ("Down", grpc.StatusCode.UNAVAILABLE, "A dependency is unavailable, please retry"),
    ],
)
async def test_errors_become_status_codes(
    ch: grpc.aio.Channel, method: str, code: grpc.StatusCode, details: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(ch, method)(b"")
    assert caught.value.code() is code and caught.value.details() == details


async def test_a_call_past_its_deadline_ends_with_deadline_exceeded(ch: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(ch, "Slow")(b"", timeout=0.2)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def _health_status(port: int) -> int:
    async with channel(f"127.0.0.1:{port}") as opened:
        answer = await health_pb2_grpc.HealthStub(opened).Check(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        status: int = answer.status
        return status


async def test_health_is_not_serving_while_redis_is_down_and_serving_once_it_is_back() -> None:
    redis_port = free_port()
    config = dataclasses.replace(settings.load("inventory"), grpc_port=0)
    server = GrpcServer("test", _register, grace=0.1, watch_interval=0.05)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    async with own_redis(redis_port) as url:
        redis = cache.connect(url)
        job = asyncio.create_task(server(Deps(config, None, redis, None)))  # type: ignore[arg-type]
        port = await server.started()
        assert await _health_status(port) == serving
    # The Redis server stopped.
    await eventually(lambda: _is(port, not_serving))
    async with own_redis(redis_port):
        await eventually(lambda: _is(port, serving))
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)
    await redis.aclose()


async def test_a_services_own_check_makes_it_not_serving_until_it_passes() -> None:
    loaded = asyncio.Event()

    async def stock_loaded(deps: Deps) -> None:
        if not loaded.is_set():
            raise errors.ServiceUnavailable("Stock is being reloaded")

    config = dataclasses.replace(settings.load("inventory"), grpc_port=0)
    server = GrpcServer("test", _register, grace=0.1, watch_interval=0.05)
    deps = Deps(config, None, None, None, ready_checks={"stock": stock_loaded})  # type: ignore[arg-type]
    job = asyncio.create_task(server(deps))
    port = await server.started()
    assert await _health_status(port) == health_pb2.HealthCheckResponse.NOT_SERVING
    loaded.set()
    await eventually(lambda: _is(port, health_pb2.HealthCheckResponse.SERVING))
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)


async def _is(port: int, status: int) -> bool:
    return await _health_status(port) == status


async def _echo_server(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    echo = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {"Echo": echo})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def test_a_channel_is_back_within_a_second_or_two_of_its_server_after_a_long_outage() -> None:
    port = free_port()
    server = await _echo_server(port)
    async with channel(f"127.0.0.1:{port}") as ch:
        echo = _call(ch, "Echo")
        assert await echo(b"x", timeout=5) == b"x"
        await server.stop(None)
        # Callers keep asking while it is down (each call fails at once). gRPC's default reconnection
        # backoff (1 s, growing 1.6x up to 2 minutes) would try again 2.5-5 s after the end of this.
        outage = asyncio.get_running_loop().time() + 12
        while asyncio.get_running_loop().time() < outage:
            with pytest.raises(grpc.aio.AioRpcError):
                await echo(b"x", timeout=1)
            await asyncio.sleep(0.2)
        server = await _echo_server(port)
        back = asyncio.get_running_loop().time()

        async def answered() -> bool:
            try:
                return await echo(b"x", timeout=1) == b"x"
            except grpc.aio.AioRpcError:
                return False

        await eventually(answered, within=10, interval=0.05)
        recovered = asyncio.get_running_loop().time() - back
    await server.stop(None)
    assert recovered < 2.0, f"the first call served {recovered:.1f} s after the server came back"
