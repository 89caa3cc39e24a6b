"""Flow 1 of the architecture through the edge: sign-up, verification mail, verify, login, session."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from kit import settings
from tests.e2e.support import bearer, mailed_token, new_email

pytestmark = pytest.mark.e2e

CONFIG = settings.load("edge")


def forged(**overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "email": "x@shop.test",
        "name": "X",
        "roles": ["Admin"],
        "permissions": [],
        "iat": now,
        "exp": now + 3600,
        "iss": CONFIG.jwt_issuer,
        "aud": CONFIG.jwt_audience,
    }
    claims.update(overrides)
    return jwt.encode(claims, CONFIG.jwt_secret.reveal(), algorithm="HS256")


async def test_a_new_customer_signs_up_verifies_logs_in_and_manages_the_session(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    email, password = new_email(), "Secret123!"
    registered = await edge.post(
        "/api/auth/register", json={"email": email, "password": password, "fullName": "Eve"}
    )
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["userId"]

    token = await mailed_token(mail, email)
    assert (
        await edge.post("/api/auth/login", json={"email": email, "password": password})
    ).status_code == 403
    verified = await edge.post("/api/auth/verify-email", json={"email": email, "token": token})
    assert verified.status_code == 200, verified.text

    first = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert first.status_code == 200
    pair = first.json()
    assert pair["tokenType"] == "Bearer" and pair["expiresIn"] == 3600

    me = await edge.get("/api/auth/me", headers=bearer(pair["accessToken"]))
    assert me.status_code == 200 and me.json()["sub"] == user_id and me.json()["email"] == email

    rotated = await edge.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert rotated.status_code == 200
    new_pair = rotated.json()
    reused = await edge.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert reused.status_code == 401 and reused.json()["error"] == "Unauthorized"
    killed = await edge.post("/api/auth/refresh", json={"refreshToken": new_pair["refreshToken"]})
    assert killed.status_code == 401

    again = (await edge.post("/api/auth/login", json={"email": email, "password": password})).json()
    assert (
        await edge.post("/api/auth/logout", json={"refreshToken": again["refreshToken"]})
    ).status_code == 204
    assert (
        await edge.post("/api/auth/refresh", json={"refreshToken": again["refreshToken"]})
    ).status_code == 401


@pytest.mark.parametrize(
    ("email", "password", "role"),
    [
        ("admin@shop.local", "Admin123!", "Admin"),
        ("seller@shop.local", "Seller123!", "Seller"),
        ("user@shop.local", "User123!", "User"),
    ],
)
async def test_the_seed_accounts_log_in_with_their_roles(
    edge: httpx.AsyncClient, email: str, password: str, role: str
) -> None:
    response = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    assert jwt.decode(response.json()["accessToken"], options={"verify_signature": False})["roles"] == [role]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b'{"email": "a@b.io", "password": ', 400, "ValidationError"),
        (b'{"email": "a@b.io"}', 400, "ValidationError"),
        (b'{"email": 42, "password": "Secret123!"}', 400, "ValidationError"),
        (b'{"email": "nobody-here@shop.test", "password": "Secret123!"}', 401, "Unauthorized"),
    ],
)
async def test_bad_logins_get_the_contract_error_and_never_a_500(
    edge: httpx.AsyncClient, body: bytes, status: int, kind: str
) -> None:
    response = await edge.post("/api/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"] == kind and "message" in response.json()
    assert response.headers["x-request-id"]


async def test_a_wrong_verification_token_is_a_400_and_verifies_nothing(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    email = new_email()
    await edge.post(
        "/api/auth/register", json={"email": email, "password": "Secret123!", "fullName": "Wrong"}
    )
    await mailed_token(mail, email)
    wrong = await edge.post("/api/auth/verify-email", json={"email": email, "token": "not-the-token"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "ValidationError"
    assert (
        await edge.post("/api/auth/login", json={"email": email, "password": "Secret123!"})
    ).status_code == 403


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: forged(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), id="expired"),
        pytest.param(lambda: forged()[:-4] + "abcd", id="tampered"),
        pytest.param(lambda: jwt.encode({"sub": "x"}, key=None, algorithm="none"), id="alg-none"),
        pytest.param(lambda: forged(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda: "garbage", id="garbage"),
    ],
)
async def test_bad_tokens_are_refused_at_the_edge(edge: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    response = await edge.get("/api/auth/me", headers=bearer(token()))
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"


async def test_identity_headers_sent_by_a_client_are_ignored(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    spoofed = {"X-User-Id": str(uuid.uuid4()), "X-User-Roles": "Admin", "X-User-Email": "boss@shop.local"}
    assert (await edge.get("/api/auth/me", headers=spoofed)).status_code == 401
    assert (await edge.get("/api/auth/roles", headers=spoofed)).status_code == 401

    email = new_email()
    user_id = (
        await edge.post(
            "/api/auth/register", json={"email": email, "password": "Secret123!", "fullName": "Sp"}
        )
    ).json()["userId"]
    await edge.post("/api/auth/verify-email", json={"email": email, "token": await mailed_token(mail, email)})
    access = (await edge.post("/api/auth/login", json={"email": email, "password": "Secret123!"})).json()[
        "accessToken"
    ]
    me = await edge.get("/api/auth/me", headers={**spoofed, **bearer(access)})
    assert me.status_code == 200 and me.json()["sub"] == user_id
    roles = await edge.get("/api/auth/roles", headers={**spoofed, **bearer(access)})
    assert roles.status_code == 403


async def test_unknown_routes_are_a_contract_404(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/api/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "NotFound"
