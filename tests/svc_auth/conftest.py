from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest

from kit import settings
from kit.app import make_app
from svc_auth.app import service
from tests.support import serve

CONFIG = settings.load("auth")


@pytest.fixture(scope="package")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_app(service, CONFIG)) as client:
        yield client


@pytest.fixture(scope="package")
async def auth_db(client: httpx.AsyncClient) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to svc_auth's test database, to look at what a request wrote."""
    assert CONFIG.database_url
    conn = await asyncpg.connect(CONFIG.database_url)
    yield conn
    await conn.close()


class Account(msgspec.Struct):
    email: str
    password: str
    user_id: str


def new_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@shop.test"


async def events_for(db: asyncpg.Connection, routing_key: str, email: str) -> list[dict[str, object]]:
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE routing_key = $1"
        " AND convert_from(payload, 'UTF8')::jsonb->>'email' = $2 ORDER BY id",
        routing_key,
        email,
    )
    return [msgspec.json.decode(r["payload"]) for r in rows]


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = "Password1!"
) -> Account:
    email = email or new_email()
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": password, "fullName": "Test User"}
    )
    assert response.status_code == 201, response.text
    return Account(email, password, response.json()["userId"])


async def verified(client: httpx.AsyncClient, db: asyncpg.Connection) -> Account:
    account = await register(client)
    (event,) = await events_for(db, "user.registered", account.email)
    response = await client.post(
        "/api/auth/verify-email", json={"email": account.email, "token": event["verificationToken"]}
    )
    assert response.status_code == 200, response.text
    return account


async def login(client: httpx.AsyncClient, account: Account) -> dict[str, object]:
    response = await client.post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def is_ready(client: httpx.AsyncClient) -> bool:
    """Whether the service answers its readiness probe (database and broker reached)."""
    return (await client.get("/health/ready")).status_code == 200
