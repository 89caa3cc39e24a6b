"""gRPC plumbing: a grpc.aio server run as a `Service.jobs` coroutine, and client channels.

Server side, `GrpcServer(name, register)` is a job: it binds the service's gRPC port (settings
`grpc_port`, `<SERVICE>_GRPC_PORT`), registers the servicers, `grpc.health.v1` and server reflection,
and stops gracefully when the job is cancelled at shutdown (health turns NOT_SERVING first, in-flight
calls get `grace` seconds). Its health follows the process's readiness (kit.readiness, checked every
`watch_interval` seconds): NOT_SERVING while the database or Redis is down or a service's own check
fails (svc_inventory rebuilding its Redis), SERVING again once they are back. Every unary call goes
through one wrapper that

- continues the caller's W3C trace (`traceparent` metadata) and request id (`x-request-id`),
- honours the caller's deadline (the handler is cancelled when it passes: DEADLINE_EXCEEDED),
- maps `kit.errors` to gRPC status codes and driver errors (PostgreSQL, Redis down) to UNAVAILABLE,
  so handlers raise the same errors as HTTP handlers and never leak a stack trace,
- counts calls and latency by method and code for `/metrics`.

Client side, `channel(target)` opens a channel whose calls carry the current `traceparent` and request
id, and `DEADLINE` is the default per-call timeout callers pass as `timeout=`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram

from kit import errors, readiness, telemetry, tracing
from kit.app import Deps

log = logging.getLogger(__name__)

DEADLINE = 2.0
"""Default timeout, in seconds, of one service-to-service call."""

calls = Counter("shop_grpc_calls_total", "gRPC calls served", ["method", "code"])
latency = Histogram(
    "shop_grpc_call_duration_seconds",
    "gRPC call latency",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

_STATUS: Mapping[type[errors.ShopError], grpc.StatusCode] = {
    errors.ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.BusinessRuleViolation: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.ServiceUnavailable: grpc.StatusCode.UNAVAILABLE,
}
_SERVER_OPTIONS = [
    # A flash sale sends thousands of calls at once: let them queue instead of being cancelled.
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Back within a second of a server's return, however long it was away: gRPC's default backoff grows
    # to 2 minutes, a checkout's 503s for as long after an outage of svc_inventory of a few minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]
_CLIENT_OPTIONS = [
    # A target may name several instances ("ipv4:127.0.0.1:5106,127.0.0.1:5126"): calls go round them,
    # skipping one that does not answer.
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Back within a second of a server's return, however long it was away: gRPC's default backoff grows
    # to 2 minutes, a checkout's 503s for as long after an outage of svc_inventory of a few minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]

Register = Callable[[grpc.aio.Server, Deps], Sequence[str]]
"""Adds a service's servicers to the server; returns their full names (for health and reflection)."""

S = TypeVar("S")


def servicer(add: Callable[[S, grpc.aio.Server], object], make: Callable[[Deps], S], name: str) -> Register:
    """The `Register` of one generated service: `servicer(add_XServicer_to_server, XServicer, full_name)`.

    `make` builds the servicer from the process's Deps; `name` is the service's full name
    (`pb.DESCRIPTOR.services_by_name["X"].full_name`).
    """

    def register(server: grpc.aio.Server, deps: Deps) -> list[str]:
        add(make(deps), server)
        return [name]

    return register


def uuid_field(field: str, value: str) -> uuid.UUID:
    """A message's UUID string field, or INVALID_ARGUMENT naming `field`."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise errors.invalid(field, "must be a UUID") from None


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    if isinstance(exc, errors.ShopError):
        # gRPC has one details string: name the fields there ("lines[0].quantity: must be ...").
        message = "; ".join(f"{d.field}: {d.message}" for d in exc.details) or exc.message
        for kind, code in _STATUS.items():
            if isinstance(exc, kind):
                return code, message
        return grpc.StatusCode.INTERNAL, exc.message
    if isinstance(exc, errors.DEPENDENCY_ERRORS):
        return grpc.StatusCode.UNAVAILABLE, "A dependency is unavailable, please retry"
    return None


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            found[key] = value
    return found


def _observed(method: str, behavior: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Wrap one unary handler: trace context, deadline, error mapping and metrics."""

    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        meta = _metadata(context)
        tracing.request_id.set(tracing.sane_request_id(meta.get("x-request-id")))
        span = telemetry.server_span(method, meta.get("traceparent", ""))
        if span is None:
            tracing.traceparent.set(tracing.child_traceparent(meta.get("traceparent")))
        began = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            remaining = context.time_remaining()
            async with asyncio.timeout(remaining if remaining is not None else None):
                return await behavior(request, context)
        except TimeoutError:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            await context.abort(code, "Deadline exceeded")
        except (grpc.aio.AbortError, asyncio.CancelledError):
            code = context.code() or grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            mapped = _status_of(exc)
            if mapped is None:
                log.exception("unhandled gRPC error", extra={"method": method})
                mapped = grpc.StatusCode.INTERNAL, "An unexpected error occurred"
            elif mapped[0] is grpc.StatusCode.UNAVAILABLE:
                log.warning("dependency failure", extra={"method": method, "error": repr(exc)})
            code = mapped[0]
            await context.abort(*mapped)
        finally:
            latency.labels(method).observe(time.perf_counter() - began)
            calls.labels(method, code.name).inc()
            telemetry.finish(
                span,
                failed=code is not grpc.StatusCode.OK,
                attributes={"rpc.grpc.status_code": code.value[0]},
            )

    return handle


class _Observe(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        return grpc.unary_unary_rpc_method_handler(
            _observed(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class GrpcServer:
    """A `Service.jobs` entry serving `register`'s servicers on the service's gRPC port.

    `port` is the port actually bound once started (settings may ask for 0: any free port, in tests).
    """

    def __init__(
        self, name: str, register: Register, grace: float = 5.0, watch_interval: float = 1.0
    ) -> None:
        self.__name__ = f"grpc-{name}"
        self.register = register
        self.grace = grace
        self.watch_interval = watch_interval
        self.port: int | None = None
        self._bound = asyncio.Event()

    async def started(self, within: float = 30.0) -> int:
        """The bound port, once the server accepts calls; TimeoutError if it does not within `within`
        seconds (it could not start: the log says why, and it is being started again)."""
        async with asyncio.timeout(within):
            await self._bound.wait()
        assert self.port is not None
        return self.port

    async def __call__(self, deps: Deps) -> None:
        config = deps.settings
        assert config.grpc_port is not None, f"{config.service} has no gRPC port"
        # Several workers of one service share the port (SO_REUSEPORT); a single one must own it, so a
        # stale process on the port is an error instead of silently taking half of the calls.
        options = [*_SERVER_OPTIONS, ("grpc.so_reuseport", 1 if config.workers > 1 else 0)]
        server = grpc.aio.server(interceptors=[_Observe()], options=options)
        names = list(self.register(server, deps))
        checker = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        self.port = server.add_insecure_port(f"{config.host}:{config.grpc_port}")
        await server.start()
        follower = asyncio.create_task(self._follow_readiness(checker, ["", *names], deps))
        log.info("gRPC serving", extra={"port": self.port, "services": names})
        try:
            await server.wait_for_termination()
        finally:
            # 1. tell balancers and health probes we are going; 2. finish in-flight calls, then stop.
            self._bound.clear()
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            with contextlib.suppress(Exception):
                await checker.enter_graceful_shutdown()
            await asyncio.shield(server.stop(self.grace))

    async def _follow_readiness(
        self, checker: health.aio.HealthServicer, names: list[str], deps: Deps
    ) -> None:
        """Keep the health status of every name in step with the process's readiness."""
        serving: bool | None = None
        while True:
            found = await readiness.report(deps)
            ready = readiness.healthy(found)
            if ready != serving:
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if ready
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in names:
                    await checker.set(name, status)
                if serving is not None:
                    log.warning("gRPC health changed", extra={"serving": ready, "checks": found})
                serving = ready
                self._bound.set()
            await asyncio.sleep(self.watch_interval)


class _Propagate(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the current trace context and request id to every outgoing call."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = list(client_call_details.metadata or ())
        method = client_call_details.method
        span = telemetry.client_span(method.decode() if isinstance(method, bytes) else method)
        metadata.append(("traceparent", telemetry.outgoing(span)))
        if rid := tracing.request_id.get():
            metadata.append(("x-request-id", rid))
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout if client_call_details.timeout is not None else DEADLINE,
            grpc.aio.Metadata(*metadata),
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        call = await continuation(details, request)
        if span is not None:
            # The call goes on after this returns: its span ends with it (its code is awaited).
            call.add_done_callback(lambda done: _finish_later(span, done))
        return call


_finishing: set[asyncio.Task[None]] = set()


def _finish_later(span: Any, call: grpc.aio.Call) -> None:
    """End a client call's span from its done callback, where its code can only be awaited later."""

    async def finish() -> None:
        telemetry.finish(span, failed=await call.code() != grpc.StatusCode.OK)

    task = asyncio.ensure_future(finish())
    _finishing.add(task)  # held until done: the loop keeps only a weak reference
    task.add_done_callback(_finishing.discard)


def channel(address: str) -> grpc.aio.Channel:
    """A client channel to `address` whose calls carry trace context and default to `DEADLINE`."""
    return grpc.aio.insecure_channel(address, options=_CLIENT_OPTIONS, interceptors=[_Propagate()])
