"""What a caller sees when PostgreSQL or RabbitMQ fails under svc_auth, and that it recovers by itself."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

import asyncpg

from kit import db, settings
from kit.app import make_app
from svc_auth.app import service
from tests.conftest import NAMESPACE, POSTGRES_URL
from tests.support import eventually, serve
from tests.svc_auth.conftest import is_ready

REGISTRATION = {"password": "Password1!", "fullName": "Outage"}


def config_with(**overrides: str) -> settings.Settings:
    return settings.load("auth", {**os.environ, **overrides})


async def test_a_database_outage_is_a_503_and_the_service_recovers_when_it_returns() -> None:
    url = f"{POSTGRES_URL}/auth_outage_{NAMESPACE}"
    name = urlsplit(url).path.lstrip("/")
    await db.drop_database(url)
    admin = await asyncpg.connect(f"{POSTGRES_URL}/postgres")
    try:
        async with serve(make_app(service, config_with(AUTH_DATABASE_URL=url))) as client:
            await eventually(lambda: is_ready(client))
            # The database goes away: new connections are refused and the open ones are cut.
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            email = f"{uuid.uuid4().hex}@shop.test"
            down = await client.post("/api/auth/register", json={"email": email, **REGISTRATION})
            assert down.status_code == 503 and down.json()["error"] == "ServiceUnavailable"
            ready = await client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("down")

            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

            async def registered() -> bool:
                response = await client.post("/api/auth/register", json={"email": email, **REGISTRATION})
                return response.status_code == 201

            await eventually(registered, within=10)
            assert await is_ready(client)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await db.drop_database(url)


async def test_with_the_broker_down_sign_ups_still_work_and_their_events_wait_in_the_outbox() -> None:
    # Its own database: the other tests' running relay would otherwise publish the waiting event.
    url = f"{POSTGRES_URL}/auth_nobroker_{NAMESPACE}"
    await db.drop_database(url)
    config = config_with(AMQP_URL="amqp://guest:guest@127.0.0.1:1/", AUTH_DATABASE_URL=url)
    async with serve(make_app(service, config)) as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert (
            ready.json()["checks"]["broker"].startswith("down") and ready.json()["checks"]["database"] == "ok"
        )
        email = f"{uuid.uuid4().hex}@shop.test"
        assert (
            await client.post("/api/auth/register", json={"email": email, **REGISTRATION})
        ).status_code == 201
    conn = await asyncpg.connect(url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
            " AND convert_from(payload, 'UTF8')::jsonb->>'email' = $1",
            email,
        )
    finally:
        await conn.close()
        await db.drop_database(url)
    assert waiting == 1
