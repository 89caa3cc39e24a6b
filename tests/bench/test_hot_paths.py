"""The hot paths of a request, one benchmark each (`make bench` compares them with the committed
baseline, perf/bench_baseline.py; skipped in `make test`).

Each runs the real code on realistic inputs: the edge parsing a request and checking its token, a
cached product detail from the bytes Redis returns to the response, msgspec on the biggest payloads, the
reservation's Lua script on a real Redis, VNPay's signing, the edge's rate-limit check.
`test_calibration` is no hot path: a fixed piece of plain Python that every other figure is divided by,
so the comparison holds on a slower or busier machine.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from edge.exchange import Exchange
from edge.jwt import Verifier
from edge.limits import Limits
from edge.protocol import HttpProtocol
from edge.ratelimit import Limiter, Policy, _Lease
from kit import settings
from kit.cache import Cache, connect
from kit.representation import Representation, answer, pack
from payment_gateways import vnpay
from svc_inventory import lua
from svc_order.schemas import CheckoutRequest
from svc_product import caching, catalog, documents, fastpath
from svc_product.app import DETAIL
from svc_product.schemas import ProductPage, ProductSummary
from svc_product.stock import STOCK
from tests.bench.test_catalog_bench import detail_row
from tests.edge.support import make_token
from tests.edge.test_parser_fuzz import Wire

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def calibration_work() -> int:
    """Plain interpreted Python (calls, dict and string work, integer arithmetic): what the machine's
    speed at the moment of the run is measured with."""
    table: dict[int, int] = {}
    total = 0
    for i in range(2_000):
        key = i & 127
        table[key] = table.get(key, 0) + (i * 31) % 97
        total += len(str(i)) + table[key] % 7
    return total


@pytest.mark.benchmark(group="calibration")
def test_calibration(benchmark: BenchmarkFixture) -> None:
    assert benchmark(calibration_work) > 0


# -- the edge ----------------------------------------------------------------------------------------------


def edge_answering(verifier: Verifier) -> tuple[HttpProtocol, Wire]:
    """An edge connection whose handler checks the bearer token and answers at once (no upstream)."""

    def handle(exchange: Exchange) -> None:
        token = next(value for name, value in exchange.headers if name == b"authorization")[7:]
        claims = verifier.verify(token.decode())
        exchange.respond(200, b"", claims.sub.encode())
        exchange.done()

    wire = Wire()
    protocol = HttpProtocol(handle, Limits(), set())  # type: ignore[arg-type]
    protocol.connection_made(wire)  # type: ignore[arg-type]
    return protocol, wire


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    asyncio.set_event_loop(running)
    yield running
    running.close()


@pytest.mark.benchmark(group="edge")
def test_edge_parsing_a_request_and_checking_its_token(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop
) -> None:
    config = settings.load("edge", {})
    verifier = Verifier(config.jwt_secret.reveal(), config.jwt_issuer, config.jwt_audience)
    request = (
        b"GET /api/orders?page=2&pageSize=20 HTTP/1.1\r\nhost: 127.0.0.1:5010\r\nuser-agent: shop-web/1.0\r\n"
        b"accept: application/json\r\naccept-encoding: gzip, deflate, br\r\nauthorization: Bearer %s\r\n"
        b"x-request-id: 0f3b2c1d9e8a7b6c5d4e3f2a1b0c9d8e\r\n\r\n" % make_token().encode()
    )

    async def measure() -> None:
        protocol, wire = edge_answering(verifier)
        benchmark(protocol.data_received, request)
        assert wire.sent.startswith(b"HTTP/1.1 200") and wire.reading

    loop.run_until_complete(measure())


@pytest.mark.benchmark(group="edge")
def test_edge_verifying_a_token_it_has_not_seen(benchmark: BenchmarkFixture) -> None:
    config = settings.load("edge", {})
    verifier = Verifier(config.jwt_secret.reveal(), config.jwt_issuer, config.jwt_audience, cache_size=1)
    tokens = [make_token({"sub": str(uuid.uuid4())}) for _ in range(2)]  # alternating: every check a miss
    turn = iter(range(10**9))
    assert benchmark(lambda: verifier.verify(tokens[next(turn) % 2])).roles


@pytest.mark.benchmark(group="edge")
def test_edge_rate_limit_check_from_a_held_lease(benchmark: BenchmarkFixture) -> None:
    limiter = Limiter(None, [Policy("user", 100, 60.0)])
    state = limiter.state("user")
    lease = _Lease()  # as the Redis script grants one: tokens this process may spend without asking
    lease.tokens = 10**12
    state.leases["user:3f1c1e9a"] = lease
    assert benchmark(limiter.check, state, "user:3f1c1e9a") == 0.0


# -- catalog, orders, payments -----------------------------------------------------------------------------


@pytest.mark.benchmark(group="catalog")
def test_cached_product_detail_from_redis_bytes_to_response(benchmark: BenchmarkFixture) -> None:
    entry = pack(documents.encode_detail(detail_row()))  # what the cache holds: body, ETag, deflated form
    stock = b'{"available":12,"reserved":2,"onHand":14,"updatedAt":"2026-12-01T00:00:00Z"}'
    request = Request({"type": "http", "method": "GET", "path": "/api/products/x", "headers": []})

    def respond() -> Response:
        return answer(request, Representation(entry), documents.stock_tail(stock))

    assert benchmark(respond).body.endswith(b'Z"}}')


@pytest.mark.benchmark(group="catalog")
def test_cached_product_detail_through_the_fast_path(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop
) -> None:
    """svc_product's answer to a cached detail below Starlette (svc_product.fastpath): the value held
    near (kit.near, after the first lookup's round trip), the gzipped answer, the two ASGI messages."""
    redis = connect(os.environ["REDIS_URL"])
    product_id = uuid.uuid4()
    key = f"{caching.product_namespace(product_id)}:v0:{caching.DETAIL}{catalog.PACKED}"

    class WarmStock:
        """svc_product's stock figures as they stand between refreshes: already known."""

        async def of(self, product_id: str) -> bytes:
            return b'{"available":12,"reserved":2,"onHand":14,"updatedAt":"2026-12-01T00:00:00Z"}'

    deps = SimpleNamespace(cache=Cache(redis, "bench"), resources={STOCK: WarmStock()})
    app = SimpleNamespace(state=SimpleNamespace(deps=deps))
    sent: list[Message] = []

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a cached detail went on to the router")

    async def receive() -> Message:
        raise AssertionError("a GET has no body to read")

    async def send(message: Message) -> None:
        sent.append(message)

    fast = fastpath.CachedDetail(router, DETAIL)
    path = f"/api/products/{product_id}"

    async def get() -> list[Message]:
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"accept-encoding", b"gzip")]}
        await fast({**scope, "app": app}, receive, send)
        return sent

    loop.run_until_complete(redis.set(key, pack(documents.encode_detail(detail_row())), ex=60))
    try:
        head, _ = benchmark(lambda: loop.run_until_complete(get()))
        assert head["status"] == 200 and (b"content-encoding", b"gzip") in head["headers"]
    finally:
        loop.run_until_complete(redis.delete(key))
        loop.run_until_complete(redis.aclose())


def product_page(size: int = 100) -> ProductPage:
    items = [
        ProductSummary(
            uuid.uuid4(),
            f"Zentro Premium Laptop X{n} Đà Lạt Edition",
            f"zentro-laptop-x{n}",
            25_990_000.0,
            "active",
            uuid.uuid4(),
            uuid.uuid4(),
            uuid.uuid4(),
            4.4,
            12,
            f"https://img.shop.local/{n}.jpg",
            NOW,
            NOW,
        )
        for n in range(size)
    ]
    return ProductPage(items, 1, size, 10_000, 100)


@pytest.mark.benchmark(group="msgspec")
def test_encoding_a_full_product_list_page(benchmark: BenchmarkFixture) -> None:
    page = product_page()
    encoder = msgspec.json.Encoder()
    assert benchmark(encoder.encode, page).startswith(b'{"items":[')


@pytest.mark.benchmark(group="msgspec")
def test_decoding_a_full_product_list_page(benchmark: BenchmarkFixture) -> None:
    raw = msgspec.json.encode(product_page())
    decoder = msgspec.json.Decoder(ProductPage)
    assert len(benchmark(decoder.decode, raw).items) == 100


@pytest.mark.benchmark(group="msgspec")
def test_decoding_a_checkout_request(benchmark: BenchmarkFixture) -> None:
    raw = (
        b'{"shippingAddress":{"fullName":"Tran Thi B","phone":"+84987654321","line1":"2 Hai Ba Trung",'
        b'"city":"Hanoi","country":"VN"},"paymentMethod":"vnpay","discountCode":" WELCOME10 "}'
    )
    decoder = msgspec.json.Decoder(CheckoutRequest)
    assert benchmark(decoder.decode, raw).discount_code == "WELCOME10"


@pytest.mark.benchmark(group="payment")
def test_vnpay_signing_a_payment_url(benchmark: BenchmarkFixture) -> None:
    params = {
        "vnp_Version": "2.1.0", "vnp_Command": "pay", "vnp_TmnCode": "SHOPDEV1", "vnp_Amount": "52000000",
        "vnp_CurrCode": "VND", "vnp_TxnRef": uuid.uuid4().hex, "vnp_OrderInfo": "Thanh toan don hang ORD-1",
        "vnp_OrderType": "other", "vnp_Locale": "vn", "vnp_IpAddr": "127.0.0.1",
        "vnp_ReturnUrl": "http://127.0.0.1:5010/api/payments/vnpay/return",
        "vnp_CreateDate": "20261201120000",
    }  # fmt: skip
    url = benchmark(vnpay.signed_url, "http://127.0.0.1:5009/vnpay/pay", "S" * 32, params)
    assert vnpay.verify("S" * 32, dict(parse_qsl(urlsplit(url).query)))


@pytest.mark.benchmark(group="inventory")
def test_reserving_two_lines_with_the_lua_script(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop
) -> None:
    redis = Redis.from_url(os.environ["REDIS_URL"])
    scripts = lua.Scripts(redis)
    products = [uuid.uuid4(), uuid.uuid4()]
    avail = [lua.avail_key(p, p) for p in products]

    async def prepare() -> None:
        await redis.set(lua.LOADED, 1)
        for key in avail:
            await redis.set(key, 10**12)
        await scripts.load_all()

    async def reserve() -> lua.Reply:
        order: lua.Order = [str(uuid.uuid4()), str(2**40)]
        for product, key, quantity in zip(products, avail, (1, 2), strict=True):
            order += (key, lua.gone_key(product), quantity)
        return await scripts.call("reserve", *lua.reserve_call([order], "bench"))

    loop.run_until_complete(prepare())
    try:
        assert benchmark(lambda: loop.run_until_complete(reserve())) == [[b"OK"]]
    finally:
        loop.run_until_complete(redis.delete(lua.LOADED, lua.DEADLINES, *avail))
        loop.run_until_complete(redis.aclose())
