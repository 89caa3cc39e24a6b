"""Requests and responses of svc_auth, camelCase on the wire."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

import msgspec

from kit.http import Model

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# `extra_json_schema` only tells clients (and the OpenAPI document) what `__post_init__` checks.
Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3, max_length=254, examples=["me@example.com"], extra_json_schema={"format": "email"}
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128, examples=["Secret123!"])]
FullName = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=100, examples=["Nguyễn Văn An"], extra_json_schema={"pattern": r"\S"}
    ),
]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
RoleName = Annotated[str, msgspec.Meta(min_length=1, max_length=50)]


def normalise_email(value: str) -> str:
    """Emails compare case-insensitively; reject what cannot be an address."""
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError("email: must be a valid email address")
    return email


class RegisterRequest(Model):
    email: Email
    password: Password
    full_name: FullName

    def __post_init__(self) -> None:
        self.email = normalise_email(self.email)
        self.full_name = self.full_name.strip()
        if not self.full_name:
            raise ValueError("fullName: must not be blank")


class RegisterResponse(Model):
    user_id: uuid.UUID
    message: str


class VerifyEmailRequest(Model):
    email: Email
    token: Token

    def __post_init__(self) -> None:
        self.email = normalise_email(self.email)


class ResendVerificationRequest(Model):
    email: Email

    def __post_init__(self) -> None:
        self.email = normalise_email(self.email)


class LoginRequest(Model):
    email: Email
    # No length rule here: a wrong password of any length is a plain 401, not a hint about the policy.
    password: Annotated[str, msgspec.Meta(max_length=1024)]

    def __post_init__(self) -> None:
        self.email = self.email.strip().lower()


class RefreshRequest(Model):
    refresh_token: Token


class TokenPair(Model):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class Message(Model):
    message: str


class Me(Model):
    """The caller's access-token claims."""

    sub: uuid.UUID
    email: str
    name: str
    roles: list[str]
    permissions: list[str]
    iat: int
    exp: int
    iss: str
    aud: str


class Role(Model):
    name: str
    description: str
    permissions: list[str]


class SetRolesRequest(Model):
    roles: Annotated[list[RoleName], msgspec.Meta(max_length=10)]


class UserRoles(Model):
    user_id: uuid.UUID
    roles: list[str]
