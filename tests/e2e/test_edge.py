"""The edge in front of the real services: identity, request ids, health, metrics, and its rate limit."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import jwt
import pytest

from kit import settings
from tests.stack import OPEN_LIMITS

pytestmark = pytest.mark.e2e

CONFIG = settings.load("edge")


def token_for(user_id: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "email": "edge-e2e@shop.test",
        "name": "Edge",
        "roles": ["User"],
        "permissions": [],
        "iat": now,
        "exp": now + 3600,
        "iss": CONFIG.jwt_issuer,
        "aud": CONFIG.jwt_audience,
    }
    return jwt.encode(claims, CONFIG.jwt_secret.reveal(), algorithm="HS256")


async def test_spoofed_identity_headers_never_reach_a_service(edge: httpx.AsyncClient) -> None:
    user_id = str(uuid.uuid4())
    spoofed = {
        "Authorization": f"Bearer {token_for(user_id)}",
        "X-User-Id": str(uuid.uuid4()),
        "X-User-Roles": "Admin",
    }
    # svc_auth checks the identity headers against the token: a spoofed one would be a 401.
    me = await edge.get("/api/auth/me", headers=spoofed)
    assert me.status_code == 200, me.text
    assert me.json()["sub"] == user_id


async def test_the_callers_request_id_comes_back_through_the_stack(edge: httpx.AsyncClient) -> None:
    request_id = f"e2e-{uuid.uuid4()}"
    response = await edge.get("/api/products", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id


async def test_the_edge_reports_its_health_and_metrics(edge: httpx.AsyncClient) -> None:
    ready = await edge.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["rateLimitStore"] == "up"
    await edge.get("/api/products")
    admin = f"http://127.0.0.1:{os.environ['EDGE_ADMIN_PORT']}/metrics"
    assert "edge_requests_total{" in (await edge.get(admin)).text
    assert (await edge.get("/metrics")).status_code == 404


async def test_a_user_past_the_rate_limit_gets_429_with_the_contract_headers(edge: httpx.AsyncClient) -> None:
    limit = int(OPEN_LIMITS["RATE_LIMIT_USER_PER_MINUTE"])
    headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    # Beyond the limit and the tokens that came back while the requests were sent (one every 60 / limit
    # seconds, however long a loaded machine takes to send them), with room for the tokens the edge's
    # workers hold in leases and for what a per-process fallback lets through while Redis is slow.
    started = time.monotonic()
    answers: list[httpx.Response] = []
    sent = 0
    while not any(answer.status_code == 429 for answer in answers):
        beyond = limit + int((time.monotonic() - started) * limit / 60) + 100
        if sent >= beyond:
            break
        batch = min(50, beyond - sent)
        answers += await asyncio.gather(*(edge.get("/api/auth/me", headers=headers) for _ in range(batch)))
        sent += batch
    refused = [answer for answer in answers if answer.status_code == 429]
    elapsed = time.monotonic() - started
    assert refused, f"no 429 after {sent} requests in {elapsed:.1f} s with a limit of {limit} a minute"
    assert sum(answer.status_code == 200 for answer in answers) >= limit
    answer = refused[0]
    assert answer.json()["error"] == "RateLimited"
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["ratelimit-policy"] == f'"user";q={limit};w=60'
