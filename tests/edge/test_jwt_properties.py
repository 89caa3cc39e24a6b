"""Property tests of the hand-written token check against PyJWT, the library it stands in for.

- Whatever string arrives as a token, the verifier answers with claims or `InvalidToken`, never another
  exception (which the edge would turn into a 500).
- Over correctly signed tokens with arbitrary claims, the edge never accepts one that PyJWT, told the
  same rules (HS256, issuer, audience, required exp, the leeway), refuses; and what it accepts carries
  the token's own subject. The claims PyJWT checks by itself are among them (`iat`, `jti`), with
  the shapes it refuses (a time claim null or not a number, an audience list holding a non-string),
  each also as an explicit example.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import jwt
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from edge.jwt import LEEWAY_SECONDS, InvalidToken
from tests.edge.test_jwt import SECRET, SETTINGS, Clock, b64, signed, verifier

pytestmark = pytest.mark.offline

PROPERTIES = settings(max_examples=300, deadline=None, database=None, print_blob=True)

TOKEN_PARTS = st.one_of(
    st.text(max_size=40),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=60),
    st.builds(lambda value: b64(value), st.binary(max_size=60)),
    st.sampled_from([b64(b'{"alg":"HS256","typ":"JWT"}'), b64(b'{"alg":"none"}'), b64(b"[]"), b64(b"null")]),
)


@PROPERTIES
@given(st.lists(TOKEN_PARTS, min_size=1, max_size=4).map(".".join))
def test_any_string_is_claims_or_invalid_token_never_another_error(token: str) -> None:
    with contextlib.suppress(InvalidToken):
        verifier().verify(token)


def _strings() -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=12), st.sampled_from(["", "User", "Admin", "a,b", "x\r\ny"]))


ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    _strings(),
    st.lists(_strings(), max_size=3),
)


class Offset(float):
    """Seconds from the moment of the check (PyJWT reads the real clock; so does the verifier here)."""


TIMES = st.one_of(
    st.integers(-3 * 3600, 3 * 3600).map(Offset),
    st.floats(-100.0, 100.0).map(Offset),
    ANY_JSON,
)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any] = ANY_JSON) -> st.SearchStrategy[Any]:
    """A valid value three times in four, anything else otherwise (one_of would weigh every branch of
    `other` as much as the valid one)."""
    return st.integers(0, 3).flatmap(lambda pick: valid if pick else other)


VALID_TIME = st.integers(-3 * 3600, 3 * 3600).map(Offset)
SUB = "0b8f3c52-51b4-4c7e-9a3f-5a3f0b8e6d21"
# Ours among other values of any kind: PyJWT refuses a list holding anything but strings.
AUDIENCE_LISTS = st.lists(st.one_of(st.just(SETTINGS.jwt_audience), ANY_JSON), min_size=1, max_size=3)
CLAIMS = st.fixed_dictionaries(
    {
        "sub": mostly(st.just(SUB)),
        "exp": mostly(VALID_TIME, TIMES),
        "iss": mostly(st.just(SETTINGS.jwt_issuer)),
        "aud": mostly(
            st.sampled_from([SETTINGS.jwt_audience, [SETTINGS.jwt_audience, "other"]]),
            st.one_of(ANY_JSON, AUDIENCE_LISTS),
        ),
    },
    optional={
        "email": mostly(st.just("user@shop.local")),
        "roles": mostly(st.just(["User"])),
        "nbf": mostly(VALID_TIME, TIMES),
        "iat": mostly(VALID_TIME, TIMES),
        "jti": mostly(st.text(max_size=12)),
    },
)
VALID = {"sub": SUB, "exp": Offset(600), "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience}


def _pyjwt_accepts(token: str) -> bool:
    try:
        jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            audience=SETTINGS.jwt_audience,
            issuer=SETTINGS.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp"]},
        )
    except jwt.PyJWTError:
        return False
    return True


@PROPERTIES
@given(CLAIMS)
@example({**VALID, "nbf": None})
@example({**VALID, "iat": None})
@example({**VALID, "exp": None})
@example({**VALID, "nbf": "0"})
@example({**VALID, "iat": "0"})
@example({**VALID, "iat": Offset(3600)})
@example({**VALID, "aud": [SETTINGS.jwt_audience, 7]})
@example({**VALID, "jti": 7})
def test_a_signed_token_the_edge_accepts_pyjwt_accepts_too(claims: dict[str, Any]) -> None:
    now = time.time()
    for name in ("exp", "nbf", "iat"):
        if isinstance(claims.get(name), Offset):
            # The two read the clock a moment apart: times right at a limit could go either way.
            assume(abs(abs(claims[name]) - LEEWAY_SECONDS) > 2)
            claims[name] = now + claims[name]
    token = signed({"alg": "HS256", "typ": "JWT"}, claims)
    try:
        accepted = verifier(Clock(now)).verify(token)
    except InvalidToken:
        return
    assert _pyjwt_accepts(token), claims
    assert accepted.sub == claims["sub"]
