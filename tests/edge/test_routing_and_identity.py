"""Through the edge: which service a request reaches, who it says the caller is, and the 401s."""

from __future__ import annotations

import re

import httpx
import jwt
import pytest

from tests.edge.support import RawClient, Upstream, make_token

PATHS = [
    ("/api/auth/me", "auth"),
    ("/api/users/me", "user"),
    ("/api/cart", "order"),
    ("/api/orders/42", "order"),
    ("/api/products/1", "product"),
    ("/api/categories", "product"),
    ("/api/brands", "product"),
    ("/api/admin/cache/stats", "product"),
    ("/api/payments/orders/7", "payment"),
    ("/api/inventory/1", "inventory"),
    ("/api/discounts", "discount"),
    ("/api/campaigns", "discount"),
    ("/api/notifications", "notify"),
]

# Catalog and stock reads are public; every other path above needs a token.
PUBLIC_READS = {"product", "inventory"}
PROTECTED = [path for path, cluster in PATHS if cluster not in PUBLIC_READS or path.startswith("/api/admin")]


def bearer(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or make_token()}"}


def assert_contract_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == kind
    assert isinstance(body["message"], str) and body["message"]
    assert body["details"] == []
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(("path", "cluster"), PATHS)
async def test_routes_each_prefix_to_its_cluster(client: httpx.AsyncClient, path: str, cluster: str) -> None:
    response = await client.get(path + "?page=2", headers=bearer())
    assert response.status_code == 200
    echo = response.json()
    assert echo["upstream"] == cluster
    assert echo["path"] == path
    assert echo["query"] == "page=2"


@pytest.mark.parametrize("path", ["/api/unknown", "/api/authx/login", "/api/productsx", "/", "/health"])
async def test_answers_404_in_contract_shape_for_unknown_paths(client: httpx.AsyncClient, path: str) -> None:
    assert_contract_error(await client.get(path, headers=bearer()), 404, "NotFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/register"),
        ("GET", "/api/products/1"),
        ("HEAD", "/api/brands"),
        ("GET", "/api/users/u1/avatar"),
        ("POST", "/api/payments/vnpay/ipn"),
        ("GET", "/api/discounts/SAVE10/validate"),
    ],
)
async def test_public_routes_reach_the_service_without_a_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 200
    if method != "HEAD":
        names = {name for name, _ in response.json()["headers"]}
        assert not names & {"x-user-id", "x-user-roles", "x-user-email"}


async def test_protected_routes_answer_401_without_a_token_and_call_nothing(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    before = {name: len(server.requests) for name, server in upstreams.items()}
    for path in PROTECTED:
        response = await client.get(path)
        assert_contract_error(response, 401, "Unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert {name: len(server.requests) for name, server in upstreams.items()} == before


async def test_a_valid_token_sets_the_identity_headers(client: httpx.AsyncClient) -> None:
    token = make_token({"sub": "user-123", "email": "a@shop.local", "roles": ["User", "Admin"]})
    echo = (await client.get("/api/orders", headers=bearer(token))).json()
    headers = dict(echo["headers"])
    assert headers["x-user-id"] == "user-123"
    assert headers["x-user-roles"] == "User,Admin"
    assert headers["x-user-email"] == "a@shop.local"
    assert headers["authorization"] == f"Bearer {token}"


async def test_a_valid_token_on_a_public_route_still_identifies_the_caller(client: httpx.AsyncClient) -> None:
    echo = (await client.get("/api/products", headers=bearer(make_token({"sub": "u-9"})))).json()
    assert dict(echo["headers"])["x-user-id"] == "u-9"


async def test_spoofed_identity_headers_are_stripped_without_a_token(client: httpx.AsyncClient) -> None:
    spoof = {"X-USER-ID": "admin", "x-user-roles": "Admin", "X-User-Email": "boss@shop.local"}
    echo = (await client.get("/api/products", headers=spoof)).json()
    names = [name for name, _ in echo["headers"]]
    assert not {"x-user-id", "x-user-roles", "x-user-email"} & set(names)


async def test_spoofed_identity_headers_are_replaced_by_the_tokens(raw: RawClient) -> None:
    token = make_token({"sub": "real-user", "roles": ["User"], "email": "real@shop.local"})
    await raw.send(
        b"GET /api/orders HTTP/1.1\r\nHost: shop\r\nX-User-Id: admin\r\nx-user-ROLES: Admin\r\n"
        b"X-User-Email: boss@shop.local\r\nAuthorization: Bearer " + token.encode() + b"\r\n"
        b"X-User-Id: admin-again\r\n\r\n"
    )
    headers = (await raw.response()).json()["headers"]
    assert [v for n, v in headers if n == "x-user-id"] == ["real-user"]
    assert [v for n, v in headers if n == "x-user-roles"] == ["User"]
    assert [v for n, v in headers if n == "x-user-email"] == ["real@shop.local"]


@pytest.mark.parametrize(
    "token",
    [
        make_token({"exp": 1_000_000_000}),
        make_token({"aud": "someone-else"}),
        make_token(secret="a-different-secret-of-a-decent-length-0123456789"),
        jwt.encode({"sub": "admin", "exp": 9_999_999_999}, None, algorithm="none"),
        make_token()[:-3] + "abc",
        "not-a-token",
    ],
    ids=["expired", "wrong-audience", "wrong-secret", "alg-none", "tampered", "garbage"],
)
@pytest.mark.parametrize("path", ["/api/orders", "/api/products"], ids=["protected", "public"])
async def test_a_bad_token_is_401_on_any_route_and_reaches_nothing(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream], token: str, path: str
) -> None:
    before = sum(len(server.requests) for server in upstreams.values())
    response = await client.get(path, headers=bearer(token))
    assert_contract_error(response, 401, "Unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert sum(len(server.requests) for server in upstreams.values()) == before


async def test_a_non_bearer_authorization_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_contract_error(response, 401, "Unauthorized")


async def test_keeps_a_sane_request_id_and_sends_it_upstream(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/products", headers={"X-Request-ID": "req-abc-123"})
    assert response.headers["x-request-id"] == "req-abc-123"
    assert dict(response.json()["headers"])["x-request-id"] == "req-abc-123"


@pytest.mark.parametrize("sent", [None, "x" * 129, ""])
async def test_generates_a_request_id_when_missing_or_insane(
    client: httpx.AsyncClient, sent: str | None
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = await client.get("/api/products", headers=headers)
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert dict(response.json()["headers"])["x-request-id"] == generated


@pytest.mark.parametrize(
    ("path", "status"), [("/api/orders", 401), ("/nowhere", 404), ("/api/orders/%2E%2E/cart", 400)]
)
async def test_edge_errors_carry_the_request_id(client: httpx.AsyncClient, path: str, status: int) -> None:
    response = await client.get(path, headers={"X-Request-ID": "trace-me"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-me"


async def test_refuses_dot_segments_rather_than_guess_what_a_service_resolves(raw: RawClient) -> None:
    await raw.send(b"GET /api/products/%2e%2e/orders HTTP/1.1\r\nHost: shop\r\n\r\n")
    response = await raw.response()
    assert response.status == 400
    assert response.json()["error"] == "ValidationError"


async def test_routes_on_the_decoded_path_so_encoded_slashes_cannot_reach_a_public_route(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/users/me%2Faddresses/avatar")
    assert_contract_error(response, 401, "Unauthorized")
