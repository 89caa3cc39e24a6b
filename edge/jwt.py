"""HS256 access-token verification for the hot path.

Hand-written rather than PyJWT because every proxied request pays for it: one HMAC, two base64 decodes
and two orjson parses, and nothing at all for a token seen recently (see `Verifier.verify`). The rules are
the contract's (section 3): the algorithm is pinned to HS256 whatever the header says, `exp` and `nbf`
are checked with a small leeway, and `iss`, `aud` and `sub` must be right. Nothing PyJWT refuses is
accepted (tests/edge/test_jwt_properties.py): a time claim (`exp`, `nbf`, `iat`) that is present must
be a number (`null` is not absent), `iat` must not lie ahead, an audience list must hold strings only,
and a `jti` must be a string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000


class InvalidToken(ValueError):
    """The token must not be trusted; the message says why, for logs and the 401 body."""


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    email: str
    roles: tuple[str, ...]
    exp: float
    # The identity header lines for the services, built once per verified token.
    headers: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = b"x-user-id: %s\r\nx-user-roles: %s\r\nx-user-email: %s\r\n" % (
            self.sub.encode(),
            ",".join(self.roles).encode(),
            self.email.encode(),
        )
        object.__setattr__(self, "headers", lines)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _json_object(segment: str, what: str) -> dict[str, object]:
    try:
        value = orjson.loads(_b64decode(segment))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"token {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object")
    return value


def _number(claims: dict[str, object], name: str) -> float | None:
    """The time claim `name`, None when the token has none; present, even as null, it must be a number."""
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int in Python; a boolean exp is garbage, not a timestamp.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"claim {name} is not a number")
    return float(value)


def _header_safe(value: str) -> bool:
    # Claims become upstream header values: no control characters, so no header injection.
    return value.isprintable()


class Verifier:
    """Verifies tokens against one secret, issuer and audience, caching the ones that passed.

    The cache maps the exact token string to its claims, so a hit proves the same bytes were verified
    before; its entries still expire with the token. When it is full the oldest entry is dropped, which
    is enough for a cache whose entries all live at most one token lifetime.
    """

    def __init__(
        self,
        secret: str,
        issuer: str,
        audience: str,
        *,
        leeway: float = LEEWAY_SECONDS,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = secret.encode()
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, Claims] = {}

    def verify(self, token: str) -> Claims:
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if now <= cached.exp + self._leeway:
                return cached
            del self._cache[token]
            raise InvalidToken("token expired")
        claims = self._verify(token, now)
        if len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]
        self._cache[token] = claims
        return claims

    def _verify(self, token: str, now: float) -> Claims:
        parts = token.split(".")
        if len(parts) != 3 or not all(parts) or not token.isascii():
            raise InvalidToken("token is not three base64url segments")
        header_b64, payload_b64, signature_b64 = parts
        header = _json_object(header_b64, "header")
        # Pinned: the header only gets to agree, never to choose (no alg=none, no RS/HS confusion).
        if header.get("alg") != "HS256":
            raise InvalidToken("token algorithm must be HS256")
        if "crit" in header:
            raise InvalidToken("token has critical header extensions")
        # Comparing the canonical encoding of the expected MAC rejects every other spelling of it.
        expected = _b64encode(hmac.digest(self._key, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256))
        if not hmac.compare_digest(expected, signature_b64.encode()):
            raise InvalidToken("token signature mismatch")
        claims = _json_object(payload_b64, "payload")

        exp = _number(claims, "exp")
        if exp is None:
            raise InvalidToken("token has no exp")
        if now > exp + self._leeway:
            raise InvalidToken("token expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and now < nbf - self._leeway:
            raise InvalidToken("token not valid yet")
        iat = _number(claims, "iat")
        if iat is not None and now < iat - self._leeway:
            raise InvalidToken("token issued in the future")
        if claims.get("iss") != self._issuer:
            raise InvalidToken("token issuer mismatch")
        aud = claims.get("aud")
        if not (
            aud == self._audience
            or (isinstance(aud, list) and self._audience in aud and all(isinstance(a, str) for a in aud))
        ):
            raise InvalidToken("token audience mismatch")
        if "jti" in claims and not isinstance(claims["jti"], str):
            raise InvalidToken("token jti is not a string")

        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or not _header_safe(sub):
            raise InvalidToken("token has no valid sub")
        email = claims.get("email", "")
        if not isinstance(email, str) or not _header_safe(email):
            raise InvalidToken("token email is not a string")
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(
            isinstance(role, str) and role and "," not in role and _header_safe(role) for role in roles
        ):
            raise InvalidToken("token roles are not a list of names")
        return Claims(sub=sub, email=email, roles=tuple(roles), exp=exp)
