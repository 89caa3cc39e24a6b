"""The token verifier on its own: PyJWT makes the tokens, a fake clock moves time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import jwt
import orjson
import pytest

from edge.jwt import LEEWAY_SECONDS, InvalidToken, Verifier
from kit import settings

pytestmark = pytest.mark.offline

SETTINGS = settings.load("edge", {})
SECRET = SETTINGS.jwt_secret.reveal()
NOW = 1_900_000_000


def claims(**override: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "0b8f3c52-51b4-4c7e-9a3f-5a3f0b8e6d21",
        "email": "user@shop.local",
        "name": "A User",
        "roles": ["User"],
        "permissions": [],
        "iat": NOW,
        "exp": NOW + 3600,
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
    }
    base.update(override)
    return base


def token(**override: object) -> str:
    return jwt.encode(claims(**override), SECRET, algorithm="HS256")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(clock: Clock | None = None, cache_size: int = 100) -> Verifier:
    return Verifier(
        SECRET, SETTINGS.jwt_issuer, SETTINGS.jwt_audience, clock=clock or Clock(), cache_size=cache_size
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: dict[str, object], payload: dict[str, object]) -> str:
    """A token with an HS256 MAC under our secret over whatever header and payload, made by hand."""
    head, body = b64(orjson.dumps(header)), b64(orjson.dumps(payload))
    return f"{head}.{body}.{b64(hmac.digest(SECRET.encode(), f'{head}.{body}'.encode(), hashlib.sha256))}"


def test_accepts_a_token_made_by_pyjwt_and_returns_its_claims() -> None:
    verified = verifier().verify(token(roles=["User", "Admin"]))
    assert verified.sub == "0b8f3c52-51b4-4c7e-9a3f-5a3f0b8e6d21"
    assert verified.email == "user@shop.local"
    assert verified.roles == ("User", "Admin")


def test_accepts_an_audience_list_that_contains_ours() -> None:
    assert verifier().verify(token(aud=["other", SETTINGS.jwt_audience])).sub


def test_accepts_a_token_without_roles_or_email() -> None:
    payload = claims()
    del payload["roles"], payload["email"]
    verified = verifier().verify(jwt.encode(payload, SECRET, algorithm="HS256"))
    assert verified.roles == ()
    assert verified.email == ""


def test_tolerates_clock_skew_within_the_leeway() -> None:
    assert verifier().verify(token(exp=NOW - LEEWAY_SECONDS + 5)).sub
    assert verifier().verify(token(nbf=NOW + LEEWAY_SECONDS - 5)).sub


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"exp": NOW - LEEWAY_SECONDS - 1}, "expired"),
        ({"nbf": NOW + LEEWAY_SECONDS + 60}, "not valid yet"),
        ({"iss": "someone-else"}, "issuer"),
        ({"aud": "other-services"}, "audience"),
        ({"aud": ["a", "b"]}, "audience"),
        ({"sub": ""}, "sub"),
        ({"sub": 42}, "sub"),
        ({"exp": "tomorrow"}, "exp"),
        ({"exp": True}, "exp"),
        # A time claim sent as null is not an absent one (PyJWT refuses it too).
        ({"exp": None}, "exp"),
        ({"nbf": None}, "nbf"),
        ({"nbf": "now"}, "nbf"),
        ({"iat": None}, "iat"),
        ({"iat": "now"}, "iat"),
        ({"iat": NOW + LEEWAY_SECONDS + 60}, "issued in the future"),
        ({"aud": [SETTINGS.jwt_audience, 7]}, "audience"),
        ({"jti": 7}, "jti"),
        ({"email": "a@b.c\r\nX-User-Roles: Admin"}, "email"),
        ({"roles": ["User,Admin"]}, "roles"),
        ({"roles": {"User": True}}, "roles"),
    ],
)
def test_rejects_a_token_whose_claims_are_wrong(override: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verifier().verify(token(**override))


def test_rejects_a_token_without_exp() -> None:
    payload = claims()
    del payload["exp"]
    with pytest.raises(InvalidToken, match="exp"):
        verifier().verify(jwt.encode(payload, SECRET, algorithm="HS256"))


def test_rejects_a_token_signed_with_another_secret() -> None:
    with pytest.raises(InvalidToken, match="signature"):
        verifier().verify(jwt.encode(claims(), "another-secret-that-is-long-enough-0123456789", "HS256"))


def test_rejects_a_tampered_payload() -> None:
    header, _, signature = token().split(".")
    forged = b64(orjson.dumps(claims(roles=["Admin"])))
    with pytest.raises(InvalidToken, match="signature"):
        verifier().verify(f"{header}.{forged}.{signature}")


def test_rejects_a_tampered_signature_including_other_spellings_of_the_same_bytes() -> None:
    header, payload, signature = token().split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    # 32 bytes in base64 leave 2 spare bits in the last character: a lax decoder accepts 4 spellings.
    respelled = signature[:-1] + ("F" if signature[-1] != "F" else "E")
    padded = signature + "="
    for bad in (flipped, respelled, padded, signature[:-2]):
        with pytest.raises(InvalidToken):
            verifier().verify(f"{header}.{payload}.{bad}")


def test_rejects_alg_none_with_or_without_a_signature() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    header = b64(b'{"alg":"none","typ":"JWT"}')
    _, payload, signature = token().split(".")
    for bad in (unsigned, f"{header}.{payload}.", f"{header}.{payload}.{signature}"):
        with pytest.raises(InvalidToken):
            verifier().verify(bad)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_rejects_other_algorithms_even_with_the_right_secret() -> None:
    with pytest.raises(InvalidToken, match="HS256"):
        verifier().verify(jwt.encode(claims(), SECRET, algorithm="HS512"))
    # RS256 in the header with an HS256 MAC over it: the classic key-confusion forgery.
    with pytest.raises(InvalidToken, match="HS256"):
        verifier().verify(signed({"alg": "RS256", "typ": "JWT"}, claims()))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "a..c",
        "...",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9.!!!.abc",
        "bnVsbA.bnVsbA.x",
    ],
)
def test_rejects_garbage_and_missing_segments(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(garbage)


def test_cache_returns_the_same_claims_for_a_repeated_token() -> None:
    check = verifier()
    value = token()
    assert check.verify(value) is check.verify(value)


def test_cache_never_returns_an_expired_token_as_valid() -> None:
    clock = Clock()
    check = verifier(clock)
    value = token(exp=NOW + 60)
    assert check.verify(value).sub
    clock.now = NOW + 60 + LEEWAY_SECONDS + 1
    with pytest.raises(InvalidToken, match="expired"):
        check.verify(value)
    # And it stays rejected: the expired entry is gone, a fresh check fails the same way.
    with pytest.raises(InvalidToken, match="expired"):
        check.verify(value)


def test_cache_stays_within_its_size() -> None:
    check = verifier(cache_size=3)
    tokens = [token(sub=f"user-{i}") for i in range(10)]
    for value in tokens:
        check.verify(value)
    assert len(check._cache) == 3
    # Evicted entries are simply verified again.
    assert check.verify(tokens[0]).sub == "user-0"


def test_verifies_a_cached_token_quickly() -> None:
    check = Verifier(SECRET, SETTINGS.jwt_issuer, SETTINGS.jwt_audience)
    issued = int(time.time())
    value = jwt.encode(claims(iat=issued, exp=issued + 3600), SECRET, algorithm="HS256")
    check.verify(value)
    started = time.perf_counter()
    for _ in range(10_000):
        check.verify(value)
    # A dict hit and a clock read; generous bound so a busy CI box does not flake.
    assert (time.perf_counter() - started) / 10_000 < 20e-6
