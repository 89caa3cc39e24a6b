"""Who is calling: the identity the edge verified and passed on in `X-User-*` headers.

Services trust these headers because only the edge reaches them (it strips any a client sent); in a
deployment the services' ports are not exposed outside the private network.
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request

from kit.errors import Forbidden, Unauthorized


class Identity(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    email: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "Admin" in self.roles


def identity(request: Request) -> Identity | None:
    """The caller, or None for a guest."""
    raw = request.headers.get("x-user-id")
    if not raw:
        return None
    try:
        user_id = uuid.UUID(raw)
    except ValueError:
        raise Unauthorized("Malformed identity") from None
    roles = frozenset(r.strip() for r in request.headers.get("x-user-roles", "").split(",") if r.strip())
    return Identity(user_id, request.headers.get("x-user-email", ""), roles)


def require_user(request: Request) -> Identity:
    who = identity(request)
    if who is None:
        raise Unauthorized("Authentication required")
    return who


def require_role(request: Request, *roles: str) -> Identity:
    """The caller, who must hold one of `roles`."""
    who = require_user(request)
    if not who.roles.intersection(roles):
        raise Forbidden(f"Requires role {' or '.join(roles)}")
    return who
