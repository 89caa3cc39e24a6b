from __future__ import annotations

import base64
import time
import uuid

import jwt
import orjson
import pytest

from kit import settings
from svc_auth import credentials
from svc_auth.schemas import normalise_email

pytestmark = pytest.mark.offline

CONFIG = settings.load("auth", {"JWT_SECRET": "k" * 64})
USER = uuid.uuid4()


def token(now: int | None = None) -> str:
    return credentials.access_token(CONFIG, USER, "a@b.io", "Ann", ["User"], ["cart:write"], now=now)


def test_access_token_carries_the_contract_claims() -> None:
    claims = credentials.read_access_token(CONFIG, token())
    assert claims["sub"] == str(USER) and claims["email"] == "a@b.io" and claims["name"] == "Ann"
    assert claims["roles"] == ["User"] and claims["permissions"] == ["cart:write"]
    assert (claims["iss"], claims["aud"]) == ("ecommerce-auth", "ecommerce-services")
    assert claims["exp"] - claims["iat"] == 60 * 60
    assert jwt.get_unverified_header(token())["alg"] == "HS256"


def _forge(header: dict[str, str], claims: dict[str, object], signature: bytes = b"") -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(orjson.dumps(header))}.{part(orjson.dumps(claims))}.{part(signature)}"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: token(now=int(time.time()) - 2 * 3600), id="expired"),
        pytest.param(
            lambda: token()[:-2] + ("AA" if not token().endswith("AA") else "BB"), id="tampered-signature"
        ),
        pytest.param(
            lambda: _forge(
                {"alg": "none", "typ": "JWT"}, jwt.decode(token(), options={"verify_signature": False})
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda: jwt.encode(
                jwt.decode(token(), options={"verify_signature": False}), "k" * 64, algorithm="HS512"
            ),
            id="alg-hs512",
        ),
        pytest.param(
            lambda: jwt.encode(
                {**jwt.decode(token(), options={"verify_signature": False}), "aud": "someone-else"},
                "k" * 64,
                algorithm="HS256",
            ),
            id="wrong-audience",
        ),
        pytest.param(
            lambda: credentials.access_token(
                settings.load("auth", {"JWT_SECRET": "z" * 64}), USER, "a", "b", [], []
            ),
            id="other-key",
        ),
    ],
)
def test_tokens_we_did_not_issue_or_that_expired_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(jwt.InvalidTokenError):
        credentials.read_access_token(CONFIG, bad())


async def test_passwords_verify_only_against_their_own_hash() -> None:
    stored = await credentials.hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "m=19456,t=2,p=1" in stored
    assert await credentials.verify_password(stored, "correct horse")
    assert not await credentials.verify_password(stored, "correct horsE")
    assert not await credentials.verify_password(None, "correct horse")
    assert not await credentials.verify_password("not-a-hash", "correct horse")


def test_opaque_tokens_are_random_and_stored_as_digests() -> None:
    (a, a_hash), (b, _) = credentials.new_opaque_token(), credentials.new_opaque_token()
    assert a != b and len(a) >= 43
    assert a_hash == credentials.digest(a) and a.encode() not in a_hash


@pytest.mark.parametrize(
    ("raw", "expected"), [(" Ann@Example.COM ", "ann@example.com"), ("a.b+c@d.io", "a.b+c@d.io")]
)
def test_emails_are_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["plain", "a@b", "a b@c.io", "@c.io", "a@@c.io", "a@c."])
def test_impossible_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="email"):
        normalise_email(raw)
