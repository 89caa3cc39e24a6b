from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import asyncpg
import httpx
import jwt
import pytest

from tests.support import eventually, identity
from tests.svc_auth.conftest import (
    CONFIG,
    Account,
    events_for,
    is_ready,
    login,
    new_email,
    register,
    verified,
)


def admin_headers() -> dict[str, str]:
    return identity("Admin", email="admin@shop.local")


def caller(account: Account, access_token: str, roles: str = "User") -> dict[str, str]:
    return {
        **identity(roles, user_id=account.user_id, email=account.email),
        "Authorization": f"Bearer {access_token}",
    }


async def test_registering_announces_the_account_with_a_verification_token(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    email = new_email()
    response = await client.post(
        "/api/auth/register", json={"email": email.upper(), "password": "Password1!", "fullName": " Ann "}
    )
    assert response.status_code == 201
    assert response.json()["message"]
    (event,) = await events_for(auth_db, "user.registered", email)
    assert event["userId"] == response.json()["userId"] and event["fullName"] == "Ann"
    assert len(event["verificationToken"]) >= 43 and event["eventId"] and event["traceparent"]
    stored = await auth_db.fetchrow(
        "SELECT password_hash, email_verified_at FROM users WHERE email = $1", email
    )
    assert stored["password_hash"].startswith("$argon2id$") and stored["email_verified_at"] is None


async def test_a_second_account_with_the_same_email_in_any_case_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    again = await client.post(
        "/api/auth/register",
        json={"email": account.email.upper(), "password": "Password2!", "fullName": "Other"},
    )
    assert again.status_code == 409 and again.json()["error"] == "Conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "Password1!", "fullName": "A"}, "email"),
        ({"email": "{new}", "password": "short", "fullName": "A"}, "password"),
        ({"email": "{new}", "password": "x" * 129, "fullName": "A"}, "password"),
        ({"email": "{new}", "password": "Password1!", "fullName": "   "}, "fullName"),
        ({"email": "{new}", "password": 12345678, "fullName": "A"}, "password"),
        ({"email": "{new}", "password": "Password1!"}, "fullName"),
        ({"email": "{new}", "password": "Password1!", "fullName": "A", "roles": ["Admin"]}, "roles"),
    ],
)
async def test_bad_registrations_are_400_and_write_nothing(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection, body: dict[str, object], field: str
) -> None:
    email = new_email()
    body = {k: (email if v == "{new}" else v) for k, v in body.items()}
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "ValidationError" and error["details"][0]["field"] == field
    assert await auth_db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_malformed_json_and_wrong_content_type_are_refused(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/api/auth/login", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["details"] == [
        {"field": "body", "message": "malformed JSON"}
    ]
    form = await client.post(
        "/api/auth/login", content=b"email=a", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415 and form.json()["error"] == "UnsupportedMediaType"


async def test_login_is_refused_until_the_email_is_verified(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await register(client)
    early = await client.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert early.status_code == 403 and early.json()["error"] == "Forbidden"
    (event,) = await events_for(auth_db, "user.registered", account.email)
    wrong = await client.post(
        "/api/auth/verify-email", json={"email": account.email, "token": "x" + event["verificationToken"]}
    )
    assert wrong.status_code == 400 and wrong.json()["details"][0]["field"] == "token"
    good = await client.post(
        "/api/auth/verify-email", json={"email": account.email, "token": event["verificationToken"]}
    )
    assert good.status_code == 200
    again = await client.post(
        "/api/auth/verify-email", json={"email": account.email, "token": event["verificationToken"]}
    )
    assert again.status_code == 200
    (announced,) = await events_for(auth_db, "user.verified", account.email)
    assert announced["userId"] == account.user_id
    assert (await login(client, account))["tokenType"] == "Bearer"


async def test_an_expired_verification_token_is_refused(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await register(client)
    (event,) = await events_for(auth_db, "user.registered", account.email)
    await auth_db.execute(
        "UPDATE email_verifications SET expires_at = now() - interval '1 s' WHERE user_id = $1",
        uuid.UUID(account.user_id),
    )
    response = await client.post(
        "/api/auth/verify-email", json={"email": account.email, "token": event["verificationToken"]}
    )
    assert response.status_code == 400
    assert await events_for(auth_db, "user.verified", account.email) == []


async def test_a_token_only_verifies_the_account_it_was_sent_to(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    mine, other = await register(client), await register(client)
    (event,) = await events_for(auth_db, "user.registered", mine.email)
    response = await client.post(
        "/api/auth/verify-email", json={"email": other.email, "token": event["verificationToken"]}
    )
    assert response.status_code == 400


async def test_resending_verification_reveals_nothing_and_mails_only_unverified_accounts(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    pending = await register(client)
    for email in (pending.email, new_email()):
        response = await client.post("/api/auth/resend-verification", json={"email": email})
        assert response.status_code == 202
    events = await events_for(auth_db, "user.registered", pending.email)
    assert [e["resent"] for e in events] == [False, True]
    assert events[0]["verificationToken"] != events[1]["verificationToken"]


async def test_login_issues_the_contract_token_pair(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await verified(client, auth_db)
    pair = await login(client, account)
    assert pair["expiresIn"] == 3600 and pair["tokenType"] == "Bearer"
    claims = jwt.decode(
        pair["accessToken"], CONFIG.jwt_secret.reveal(), algorithms=["HS256"], audience="ecommerce-services"
    )
    assert (
        claims["sub"] == account.user_id
        and claims["email"] == account.email
        and claims["name"] == "Test User"
    )
    assert (
        claims["roles"] == ["User"]
        and "cart:write" in claims["permissions"]
        and claims["iss"] == "ecommerce-auth"
    )


async def test_wrong_password_and_unknown_email_get_the_same_answer_in_about_the_same_time(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await verified(client, auth_db)

    async def timed(email: str) -> tuple[float, httpx.Response]:
        began = time.perf_counter()
        response = await client.post("/api/auth/login", json={"email": email, "password": "Wrong-pass1"})
        return time.perf_counter() - began, response

    wrong = [await timed(account.email) for _ in range(5)]
    unknown = [await timed(new_email()) for _ in range(5)]
    assert {r.status_code for _, r in wrong + unknown} == {401}
    assert {r.text for _, r in wrong + unknown} == {wrong[0][1].text}
    ratio = statistics.median(t for t, _ in unknown) / statistics.median(t for t, _ in wrong)
    # Both paths run one argon2 verification; without the dummy hash the unknown email would be ~10x faster.
    assert 0.4 < ratio < 2.5


async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await verified(client, auth_db)
    first = await login(client, account)
    second = (await client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})).json()
    assert second["refreshToken"] != first["refreshToken"] and second["accessToken"]
    reuse = await client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401 and "reuse" in reuse.json()["message"]
    after = await client.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert after.status_code == 401
    other_session = await login(client, account)
    still = await client.post("/api/auth/refresh", json={"refreshToken": other_session["refreshToken"]})
    assert still.status_code == 200


async def test_concurrent_refreshes_of_one_token_let_exactly_one_win(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await verified(client, auth_db)
    pair = await login(client, account)
    responses = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


async def test_logout_ends_the_session(client: httpx.AsyncClient, auth_db: asyncpg.Connection) -> None:
    account = await verified(client, auth_db)
    pair = await login(client, account)
    assert (
        await client.post("/api/auth/logout", json={"refreshToken": pair["refreshToken"]})
    ).status_code == 204
    assert (
        await client.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    ).status_code == 401
    assert (await client.post("/api/auth/logout", json={"refreshToken": "unknown"})).status_code == 204


async def test_me_returns_the_callers_claims(client: httpx.AsyncClient, auth_db: asyncpg.Connection) -> None:
    account = await verified(client, auth_db)
    token = str((await login(client, account))["accessToken"])
    me = await client.get("/api/auth/me", headers=caller(account, token))
    assert me.status_code == 200
    assert (
        me.json()["sub"] == account.user_id
        and me.json()["email"] == account.email
        and me.json()["roles"] == ["User"]
    )
    assert (await client.get("/api/auth/me")).status_code == 401
    someone_else = {**caller(account, token), "X-User-Id": str(uuid.uuid4())}
    assert (await client.get("/api/auth/me", headers=someone_else)).status_code == 401


async def test_only_admins_read_and_assign_roles(
    client: httpx.AsyncClient, auth_db: asyncpg.Connection
) -> None:
    account = await verified(client, auth_db)
    pair = await login(client, account)
    as_user = caller(account, str(pair["accessToken"]))
    assert (await client.get("/api/auth/roles", headers=as_user)).status_code == 403
    roles = await client.get("/api/auth/roles", headers=admin_headers())
    assert [r["name"] for r in roles.json()] == ["Admin", "Seller", "User"]
    path = f"/api/auth/users/{account.user_id}/roles"
    assert (await client.put(path, json={"roles": ["Seller"]}, headers=as_user)).status_code == 403
    unknown_role = await client.put(path, json={"roles": ["Emperor"]}, headers=admin_headers())
    assert unknown_role.status_code == 400
    missing = await client.put(
        f"/api/auth/users/{uuid.uuid4()}/roles", json={"roles": ["User"]}, headers=admin_headers()
    )
    assert missing.status_code == 404
    done = await client.put(path, json={"roles": ["Seller", "User"]}, headers=admin_headers())
    assert done.json() == {"userId": account.user_id, "roles": ["Seller", "User"]}
    refreshed = (await client.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})).json()
    claims = jwt.decode(refreshed["accessToken"], options={"verify_signature": False})
    assert claims["roles"] == ["Seller", "User"] and "product:create" in claims["permissions"]


async def test_unknown_routes_and_methods_answer_in_the_contract_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/auth/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    wrong_method = await client.delete("/api/auth/login")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "MethodNotAllowed"
    assert missing.headers["x-request-id"]


async def test_health_metrics_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    await eventually(lambda: is_ready(client))  # once its broker connection is up, as at any start
    ready = await client.get("/health/ready")
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert "shop_http_requests_total" in (await client.get("/metrics")).text
    spec = (await client.get("/openapi.json")).json()
    assert "RegisterRequest" in spec["components"]["schemas"]
    assert spec["paths"]["/api/auth/register"]["post"]["responses"]["201"]


async def test_the_request_id_of_the_caller_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "req-123"})
    assert response.headers["x-request-id"] == "req-123"
