"""What the client sees when a service is down, slow, rude or gone mid-answer; and the pools."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from edge import server as edge_server
from edge.connection import Connection
from edge.errors import GatewayTimeout
from edge.limits import Deadlines, Limits
from edge.protocol import HttpProtocol
from edge.server import Edge
from edge.upstream import Pool
from tests.edge.conftest import StartEdge
from tests.edge.faulty import Fault, FaultyUpstream, Peer
from tests.edge.support import WAIT, RawClient, RawResponse, Upstream, dead_url, edge_config, make_token
from tests.support import eventually, recorded_spans

# How long a "too slow" service takes to answer: far past the edge's 0.5 s response timeout (the test
# config's), so that a 504 well before it can only be the edge's, however loaded the machine.
SLOWER = 10


def contract_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status
    assert response.json() == {"error": kind, "message": response.json()["message"], "details": []}
    assert response.headers["x-request-id"]


def retried_or_refused(method: str, answer: RawResponse) -> None:
    """What a client gets when the service failed before any answer."""
    if method == "GET":
        # Sent once more, on a new connection.
        assert answer.status == 200, answer.body
    else:
        # A checkout is not sent twice by the edge: the client retries it with its Idempotency-Key.
        assert answer.status == 502, answer.body
        assert answer.json() == {"error": "BadGateway", "message": answer.json()["message"], "details": []}


async def test_answers_503_when_no_destination_is_reachable(start_edge: StartEdge) -> None:
    down: Edge = await start_edge(edge_config({"*": f"{dead_url()},{dead_url()}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{down.port}") as client:
        response = await client.get("/api/products", headers={"X-Request-ID": "down-1"})
    contract_error(response, 503, "ServiceUnavailable")
    assert response.headers["x-request-id"] == "down-1"


async def test_fails_over_to_the_next_destination(upstream: Upstream, start_edge: StartEdge) -> None:
    half: Edge = await start_edge(edge_config({"*": f"{dead_url()},{upstream.url}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{half.port}") as client:
        for _ in range(4):
            assert (await client.get("/api/products")).status_code == 200


async def test_balances_round_robin_over_destinations(
    upstreams: dict[str, Upstream], start_edge: StartEdge
) -> None:
    first, second = upstreams["inventory"], upstreams["discount"]
    both: Edge = await start_edge(edge_config({"*": f"{first.url},{second.url}"}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{both.port}") as client:
        names = [(await client.get("/api/products")).json()["upstream"] for _ in range(4)]
    assert names == ["inventory", "discount", "inventory", "discount"]


async def test_answers_502_when_the_service_hangs_up_without_answering(client: httpx.AsyncClient) -> None:
    contract_error(await client.get("/api/products?reset=1"), 502, "BadGateway")


async def test_answers_504_when_the_service_is_too_slow(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await client.get(f"/api/products?slow={SLOWER}", headers={"X-Request-ID": "slow-1"})
    contract_error(response, 504, "GatewayTimeout")
    assert response.headers["x-request-id"] == "slow-1"
    # The session edge waits 0.5 s (EDGE_RESPONSE_TIMEOUT in the test config), not for the service.
    assert time.perf_counter() - started < SLOWER / 2
    assert (await client.get("/api/products")).status_code == 200


async def test_a_failing_expiry_leaves_the_other_timeouts_running(
    upstreams: dict[str, Upstream],
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker's one deadline sweep runs every expiry there is: one that raised ended it, and no
    request of that worker timed out again (a slow service held its client until it answered)."""
    failures = 0

    def faulty_expiry(now: float) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("an expiry failed")

    def with_faulty_holder(
        connections: set[HttpProtocol], limits: Limits, also: list[Callable[[float], None]]
    ) -> Deadlines:
        # Swept first, at every pass: each later expiry runs after one that raised.
        return Deadlines(connections, limits, [faulty_expiry, *also])

    monkeypatch.setattr(edge_server, "Deadlines", with_faulty_holder)
    gateway: Edge = await start_edge(edge_config({name: server.url for name, server in upstreams.items()}))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=5) as client:
        for attempt in range(2):
            started = time.perf_counter()
            contract_error(
                await client.get(f"/api/products?slow={SLOWER}&n={attempt}"), 504, "GatewayTimeout"
            )
            # The 0.5 s response timeout of the test config, not the service's answer.
            assert time.perf_counter() - started < SLOWER / 2
    assert failures > 1
    assert "an expiry failed" in caplog.text


async def test_a_connection_whose_expiry_fails_leaves_its_pools_other_timeouts_running(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A pool expires its silent exchanges one by one: one whose expiry raised skipped the rest of the
    pool in that sweep, and their clients waited for the service instead of getting their 504."""
    pool = Pool(upstream.url, max_connections=3, connect_timeout=WAIT, idle_timeout=WAIT)
    conns = [(await pool.acquire())[0] for _ in range(3)]
    timed_out: list[Connection] = []

    def watcher(conn: Connection) -> Callable[[], None]:
        def answered() -> None:
            timed_out.append(conn)
            if len(timed_out) == 1:
                # Whichever the sweep expires first.
                raise RuntimeError("an expiry failed")

        return answered

    try:
        for n, conn in enumerate(conns):
            head = b"GET /api/products?slow=%d&n=%d HTTP/1.1\r\nhost: shop\r\n\r\n" % (SLOWER, n)
            conn.send_head(head, head_only=False, body_follows=False, timeout=0.5)
            conn.watch(watcher(conn))
        # As the sweep sees them once every timeout has passed (no answer can arrive meanwhile: nothing
        # is awaited between the requests and the expiry).
        pool.expire(time.monotonic() + 1)
        assert sorted(map(id, timed_out)) == sorted(map(id, conns))
        assert all(isinstance(conn.error, GatewayTimeout) for conn in conns)
        assert "an expiry failed" in caplog.text
    finally:
        for conn in conns:
            conn.release()
        pool.close()


async def test_cuts_the_client_off_when_the_service_dies_mid_answer(raw: RawClient) -> None:
    await raw.send(b"GET /api/products?close=mid HTTP/1.1\r\nHost: shop\r\n\r\n")
    # The status already went out: the only honest signal left is a short body and a closed connection.
    with pytest.raises(ConnectionError):
        await raw.response()


async def test_reuses_upstream_connections_under_concurrency(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    notify = upstreams["notify"]
    headers = {"Authorization": "Bearer " + make_token()}
    before = notify.connections
    for _ in range(3):
        answers = await asyncio.gather(
            *(client.get("/api/notifications", headers=headers) for _ in range(10))
        )
        assert all(answer.status_code == 200 for answer in answers)
    assert notify.connections - before <= 10


async def test_drops_a_pooled_connection_the_service_closed(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    # The service answers and then closes, as at the end of its keep-alive timeout.
    assert (await client.get("/api/products?bye=1")).status_code == 200
    await asyncio.sleep(0.05)
    for _ in range(3):
        assert (await client.get("/api/products?bye=1")).status_code == 200


async def test_passes_service_errors_through_untouched(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products?status=409")
    assert response.status_code == 409
    assert response.json()["upstream"] == "product"


# -- a service killed mid-exchange (SIGKILL: its sockets reset, its port refuses) ---------------------
#
# Whatever the moment, the client gets an answer: an idempotent request without a body that failed
# before any answer is sent once more, anything else is a 502 (a 503 when no destination is left),
# and the client's connection serves its next request (or the answer said it would close).

CLIENT_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
IDEMPOTENCY_KEY = "0b5c6f62-3a57-4c43-9b1e-8c2d5e7f9a10"


async def reset_at_once(peer: Peer) -> None:
    peer.reset()


async def reset_after_the_head(peer: Peer) -> None:
    await peer.read_head()
    peer.reset()


async def reset_mid_body(peer: Peer) -> None:
    await peer.read_head()
    await peer.read_body(1)
    peer.reset()


async def hang_up_mid_answer_head(peer: Peer) -> None:
    await peer.read_request()
    await peer.send(b"HTTP/1.1 200 OK\r\ncontent-le")
    peer.hang_up()


async def reset_the_next_request(peer: Peer) -> None:
    """Answers one request; the process dies while the connection idles in the edge's pool, and the
    next request on it meets the reset."""
    await peer.answer()
    await peer.read_head()
    peer.reset()


KILLED = {
    "reset on accept": reset_at_once,
    "reset after the head": reset_after_the_head,
    "reset mid body": reset_mid_body,
    "closed mid answer head": hang_up_mid_answer_head,
    "stale pooled connection": reset_the_next_request,
}
TRACING = {"tracing off": None, "sampled": "01", "unsampled": "00"}


@pytest.fixture(params=list(TRACING), ids=list(TRACING))
def flags(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The client's traceparent flags, with tracing on; None: tracing off."""
    sampled: str | None = TRACING[request.param]
    if sampled is None:
        yield None
        return
    with recorded_spans("edge"):
        yield sampled


@pytest.fixture
async def faulty_edge(faulty: FaultyUpstream, flags: str | None, start_edge: StartEdge) -> Edge:
    """An edge whose every cluster is the faulty service (started with tracing on, unless `flags` is None)."""
    gateway: Edge = await start_edge(edge_config({"*": faulty.url}))
    return gateway


def orders_request(method: str, flags: str | None) -> bytes:
    """A checkout (POST, JSON body, Idempotency-Key) or a read of an order (GET), in one write."""
    body = b'{"shippingAddress":{"line1":"1 Main St"},"paymentMethod":"vnpay"}' if method == "POST" else b""
    target = b"/api/orders/checkout" if method == "POST" else b"/api/orders/1"
    head = [
        b"%s %s HTTP/1.1" % (method.encode(), target),
        b"host: shop",
        b"authorization: Bearer " + make_token().encode(),
        b"idempotency-key: " + IDEMPOTENCY_KEY.encode(),
    ]
    if flags is not None:
        head.append(f"traceparent: {CLIENT_TRACE}-{flags}".encode())
    if body:
        head += [b"content-type: application/json", b"content-length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def still_serves(raw: RawClient, answer: RawResponse) -> None:
    """The connection an answer came on serves the next request, or the answer said it would not."""
    if answer.headers.get("connection") == "close":
        assert await raw.closed()
        return
    await raw.send(orders_request("GET", None))
    assert (await raw.response()).status == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("fault", list(KILLED.values()), ids=list(KILLED))
async def test_a_service_killed_mid_exchange_is_answered_never_dropped(
    faulty: FaultyUpstream, faulty_edge: Edge, flags: str | None, method: str, fault: Fault
) -> None:
    raw = await RawClient.connect(faulty_edge.port)
    faulty.expect(fault)
    if fault is reset_the_next_request:
        # The connection the request will find idle in the pool.
        await raw.send(orders_request("GET", None))
        assert (await raw.response()).status == 200
    await raw.send(orders_request(method, flags))
    answer = await raw.response()
    retried_or_refused(method, answer)
    assert all(seen["idempotency-key"] == IDEMPOTENCY_KEY for seen in faulty.requests)
    await still_serves(raw, answer)
    await raw.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_service_whose_port_refuses_after_the_kill_is_a_502_or_503(
    faulty: FaultyUpstream, faulty_edge: Edge, flags: str | None, method: str
) -> None:
    async def dies(peer: Peer) -> None:
        await peer.read_head()
        faulty.stop()
        peer.reset()

    raw = await RawClient.connect(faulty_edge.port)
    faulty.expect(dies)
    await raw.send(orders_request(method, flags))
    answer = await raw.response()
    # The retry of the GET finds no destination that takes a connection.
    status, kind = (503, "ServiceUnavailable") if method == "GET" else (502, "BadGateway")
    assert answer.status == status, answer.body
    assert answer.json() == {"error": kind, "message": answer.json()["message"], "details": []}
    assert await raw.closed() if answer.headers.get("connection") == "close" else True
    await raw.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_new_connection_the_service_resets_before_it_is_used_fails_at_once(
    faulty: FaultyUpstream, faulty_edge: Edge, flags: str | None, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service resets a connection the edge just opened, before the edge has sent anything on it:
    the request waited for the response timeout (a 504) on a connection already gone."""
    loop = asyncio.get_running_loop()
    create_connection = loop.create_connection
    first = [True]

    async def lost_before_use(*args: Any, **kwargs: Any) -> Any:
        transport, conn = await create_connection(*args, **kwargs)

        async def lost() -> bool:
            return bool(conn.lost)

        if args[2] == faulty.port and first:
            first.clear()
            # Hand the connection over only once the reset has reached it.
            await eventually(lost, within=WAIT, interval=0.005)
        return transport, conn

    monkeypatch.setattr(loop, "create_connection", lost_before_use)
    faulty.expect(reset_at_once)
    raw = await RawClient.connect(faulty_edge.port)
    await raw.send(orders_request(method, flags))
    # Not the 504 of the response timeout, which the request waited for when the loss went unnoticed.
    answer = await raw.response()
    retried_or_refused(method, answer)
    await still_serves(raw, answer)
    await raw.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # refused at the door, before the body is read
        ({"authorization": "Bearer " + make_token()}, 503),  # no destination takes a connection
    ],
    ids=["refused", "nowhere to send it"],
)
async def test_an_answer_sent_before_the_request_body_arrived_says_the_connection_closes(
    start_edge: StartEdge, headers: dict[str, str], status: int
) -> None:
    """The edge closes a connection whose request body it did not read (its remaining bytes would be
    taken for the next request): an answer that does not say so leaves the client to send its next
    request on a connection being closed, which the client sees as dropped without an answer."""
    down: Edge = await start_edge(edge_config({"*": dead_url()}))
    body = b'{"paymentMethod":"vnpay"}'
    head = b"POST /api/orders/checkout HTTP/1.1\r\nhost: shop\r\ncontent-length: %d\r\n" % len(body)
    head += b"".join(b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in headers.items())
    raw = await RawClient.connect(down.port)
    # The head alone, as a client writes it before its body (httpx does, in two writes).
    await raw.send(head + b"\r\n")
    answer = await raw.response()
    assert answer.status == status
    assert answer.headers["connection"] == "close"
    await raw.send(body)
    assert await raw.closed()
    await raw.close()
