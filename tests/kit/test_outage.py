"""A dependency that fails gives a clean 503 (a cut connection's read is retried first); a client that
hangs up mid-body is a 499, not an error; a trailing slash never redirects to the client's Host."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from kit import settings
from kit.app import Service, deps, make_app
from kit.http import JSON, body_of
from kit.http import Model as Body
from kit.openapi import doc
from tests.conftest import NAMESPACE, PORT_OFFSET, POSTGRES_URL
from tests.servers import own_postgres
from tests.support import serve

calls: collections.Counter[str] = collections.Counter()


class Note(Body):
    text: str


@doc("A read that meets a cut connection on its first call")
async def flaky_read(request: Request) -> Response:
    """Meets a cut connection on its first call only, as the first read after a restart does."""
    calls["read"] += 1
    if calls["read"] == 1:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    return JSON({"calls": calls["read"]})


@doc("A read that always meets a broken connection")
async def broken_read(request: Request) -> Response:
    calls["broken"] += 1
    raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


@doc("A write that meets a cut connection", status=201)
async def flaky_write(request: Request) -> Response:
    calls["write"] += 1
    raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


@doc("Echo a note", body=Note, response=Note)
async def echo(request: Request) -> Response:
    return JSON(await body_of(request, Note))


@doc("Count the notes")
async def count(request: Request) -> Response:
    async with deps(request).db.acquire() as conn:
        return JSON({"notes": await conn.fetchval("SELECT count(*) FROM notes")})


@doc("Add a note", body=Note, status=201)
async def add(request: Request) -> Response:
    note = await body_of(request, Note)
    async with deps(request).db.acquire() as conn:
        await conn.execute("INSERT INTO notes (text) VALUES ($1)", note.text)
    return JSON({"ok": True}, 201)


ROUTES = [
    Route("/outage/read", flaky_read),
    Route("/outage/broken", broken_read),
    Route("/outage/write", flaky_write, methods=["POST"]),
    Route("/outage/echo", echo, methods=["POST"]),
    Route("/outage/notes", count),
    Route("/outage/notes", add, methods=["POST"]),
]


SERVICE = Service("auth", ROUTES, uses_redis=False, uses_broker=False)


def config(database_url: str) -> settings.Settings:
    return settings.load("auth", {"AUTH_DATABASE_URL": database_url, "SHOP_ENV": "test"})


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(SERVICE, config(f"{POSTGRES_URL}/outage_{NAMESPACE}"))
    async with serve(app) as client:
        yield client


async def test_a_read_that_met_a_cut_connection_is_answered_from_a_fresh_one(api: httpx.AsyncClient) -> None:
    answer = await api.get("/outage/read")
    assert answer.status_code == 200
    assert answer.json() == {"calls": 2}


async def test_a_read_failing_again_is_a_503_with_retry_after_in_the_contract_shape(
    api: httpx.AsyncClient,
) -> None:
    before = calls["broken"]
    answer = await api.get("/outage/broken")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["error"] == "ServiceUnavailable"
    assert answer.headers["x-request-id"]
    assert calls["broken"] == before + 2  # once, then once more on fresh connections


async def test_a_write_is_never_run_twice_it_is_a_503_the_client_may_retry(api: httpx.AsyncClient) -> None:
    before = calls["write"]
    answer = await api.post("/outage/write")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert calls["write"] == before + 1


async def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_clients_host(api: httpx.AsyncClient) -> None:
    answer = await api.get("/outage/read/", headers={"Host": "evil.example"})
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.json()["error"] == "NotFound"


async def test_a_client_that_hangs_up_mid_body_is_counted_as_499_without_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(SERVICE, config(f"{POSTGRES_URL}/outage_{NAMESPACE}"))
    sent: list[Message] = []
    parts: list[Message] = [
        {"type": "http.request", "body": b'{"text": "hal', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return parts.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/outage/echo",
        "raw_path": b"/outage/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert sent == []  # nobody to answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    counted = {"method": "POST", "route": "/outage/echo", "status": "499"}
    assert REGISTRY.get_sample_value("shop_http_requests_total", counted) == 1.0


async def test_a_postgresql_restart_under_load_gives_503s_at_worst_never_a_500() -> None:
    async with own_postgres(5433 + PORT_OFFSET) as server:
        app = make_app(SERVICE, config(f"{server.url}/outage"))
        async with serve(app) as client:
            async with app.state.deps.db.acquire() as conn:
                await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL)")
            statuses: collections.Counter[int] = collections.Counter()
            done = asyncio.Event()

            async def shopper(n: int) -> None:
                while not done.is_set():
                    if n % 2:
                        answer = await client.get("/outage/notes")
                    else:
                        answer = await client.post("/outage/notes", json={"text": "x"})
                    statuses[answer.status_code] += 1
                    await asyncio.sleep(0.005)

            shoppers = [asyncio.create_task(shopper(n)) for n in range(16)]
            for _ in range(3):
                await asyncio.sleep(0.5)
                await server.restart()
            ok_before = statuses[200] + statuses[201]
            await asyncio.sleep(1.0)
            done.set()
            await asyncio.gather(*shoppers)
        print(f"\nstatuses over 3 PostgreSQL restarts under load: {dict(statuses)}")
        assert set(statuses) <= {200, 201, 503}
        assert statuses[500] == 0
        assert statuses[200] + statuses[201] > ok_before  # and it recovered by itself
