"""svc_auth: registration, email verification, login, token refresh and roles (CONTRACT.md section 4)."""

from __future__ import annotations

from pathlib import Path

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.bus import publish
from kit.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError, invalid
from kit.http import JSON, body_of, path_uuid
from kit.identity import require_role, require_user
from kit.openapi import doc
from svc_auth import accounts, credentials, store
from svc_auth.events import UserVerified
from svc_auth.schemas import (
    LoginRequest,
    Me,
    Message,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResendVerificationRequest,
    Role,
    SetRolesRequest,
    TokenPair,
    UserRoles,
    VerifyEmailRequest,
)

BAD_CREDENTIALS = "Invalid email or password"
BAD_REFRESH = "Invalid or expired refresh token"


@doc(
    "Create an account and send its verification mail",
    body=RegisterRequest,
    response=RegisterResponse,
    status=201,
    errors=(409,),
)
async def register(request: Request) -> Response:
    body = await body_of(request, RegisterRequest)
    password_hash = await credentials.hash_password(body.password)
    async with deps(request).db.acquire() as conn, conn.transaction():
        user_id = await accounts.create_account(
            conn, body.email, password_hash, body.full_name, ["User"], verified=False
        )
    if user_id is None:
        raise Conflict("An account with this email already exists")
    message = "Account created. Check your email for the verification link."
    return JSON(RegisterResponse(user_id=user_id, message=message), 201)


@doc("Verify an email address with the token from the mail", body=VerifyEmailRequest, response=Message)
async def verify_email(request: Request) -> Response:
    body = await body_of(request, VerifyEmailRequest)
    token_hash = credentials.digest(body.token)
    async with deps(request).db.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(store.USE_VERIFICATION, token_hash, body.email)
        if user is not None:
            await publish(
                conn,
                UserVerified(user_id=user["id"], email=user["email"], full_name=user["full_name"]),
            )
            return JSON(Message(message="Email verified. You can now log in."))
        if await conn.fetchval(store.USED_VERIFICATION_OF_VERIFIED, token_hash, body.email):
            return JSON(Message(message="Email already verified."))
    raise invalid("token", "The verification token is invalid or has expired")


@doc(
    "Send a new verification mail to an unverified account",
    body=ResendVerificationRequest,
    response=Message,
    status=202,
)
async def resend_verification(request: Request) -> Response:
    body = await body_of(request, ResendVerificationRequest)
    async with deps(request).db.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(store.UNVERIFIED_USER_BY_EMAIL, body.email)
        if user is not None:
            await accounts.send_verification(conn, user["id"], user["email"], user["full_name"], resent=True)
    # The same answer whether or not the account exists, so the endpoint reveals nothing.
    return JSON(
        Message(message="If the account exists and is not verified yet, a new mail is on its way."), 202
    )


@doc(
    "Log in with email and password: 401 for wrong credentials, 403 while the email is not verified",
    body=LoginRequest,
    response=TokenPair,
    errors=(401, 403),
)
async def login(request: Request) -> Response:
    body = await body_of(request, LoginRequest)
    d = deps(request)
    async with d.db.acquire() as conn:
        account = await conn.fetchrow(store.ACCOUNT_BY_EMAIL, body.email)
        # Always verify, even for an unknown email, so both failures take the same time.
        if not await credentials.verify_password(account and account["password_hash"], body.password):
            raise Unauthorized(BAD_CREDENTIALS)
        assert account is not None
        if account["email_verified_at"] is None:
            raise Forbidden("Email address not verified yet")
        if credentials.needs_rehash(account["password_hash"]):
            new_hash = await credentials.hash_password(body.password)
            await conn.execute(store.UPDATE_PASSWORD_HASH, account["id"], new_hash)
        pair = await accounts.issue_tokens(conn, d.settings, account)
    return JSON(pair)


@doc(
    "Trade a refresh token for a new pair; a reused token revokes its whole family",
    body=RefreshRequest,
    response=TokenPair,
)
async def refresh(request: Request) -> Response:
    body = await body_of(request, RefreshRequest)
    token_hash = credentials.digest(body.refresh_token)
    d = deps(request)
    async with d.db.acquire() as conn:
        async with conn.transaction():
            claimed = await conn.fetchrow(store.USE_REFRESH, token_hash)
            if claimed is not None:
                account = await conn.fetchrow(store.ACCOUNT_BY_ID, claimed["user_id"])
                return JSON(await accounts.issue_tokens(conn, d.settings, account, claimed["family_id"]))
        state = await conn.fetchrow(store.REFRESH_STATE, token_hash)
        if state is not None and state["used_at"] is not None:
            # A rotated token came back: someone holds a copy. End the whole session for everyone.
            await conn.execute(store.REVOKE_FAMILY, state["family_id"])
            raise Unauthorized("Refresh token reuse detected; the session has been revoked")
    raise Unauthorized(BAD_REFRESH)


@doc("Revoke the session of a refresh token", body=RefreshRequest, status=204)
async def logout(request: Request) -> Response:
    body = await body_of(request, RefreshRequest)
    async with deps(request).db.acquire() as conn:
        await conn.execute(store.REVOKE_FAMILY_OF, credentials.digest(body.refresh_token))
    return Response(status_code=204)


@doc("The caller's access-token claims", response=Me, auth="user")
async def me(request: Request) -> Response:
    who = require_user(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Bearer token required")
    try:
        claims = credentials.read_access_token(deps(request).settings, token.strip())
    except jwt.InvalidTokenError:
        raise Unauthorized("Invalid or expired token") from None
    if claims["sub"] != str(who.user_id):
        raise Unauthorized("Token does not match the caller")
    return JSON(Me(**{k: claims[k] for k in Me.__struct_fields__}))


@doc("Every role with its permissions", response=list[Role], auth="Admin")
async def roles(request: Request) -> Response:
    require_role(request, "Admin")
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(store.ROLES)
    return JSON(
        [Role(name=r["name"], description=r["description"], permissions=r["permissions"]) for r in rows]
    )


@doc("Replace a user's roles", body=SetRolesRequest, response=UserRoles, auth="Admin", errors=(409,))
async def set_roles(request: Request) -> Response:
    require_role(request, "Admin")
    user_id = path_uuid(request, "userId", "User not found")
    body = await body_of(request, SetRolesRequest)
    wanted = sorted(set(body.roles))
    async with deps(request).db.acquire() as conn, conn.transaction():
        known = await conn.fetchval(store.KNOWN_ROLES, wanted)
        if unknown := sorted(set(wanted) - set(known)):
            raise ValidationError(f"Unknown roles: {', '.join(unknown)}")
        if not await store.replace_roles(conn, user_id, wanted):
            raise NotFound("User not found")
    return JSON(UserRoles(user_id=user_id, roles=wanted))


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/verify-email", verify_email, methods=["POST"]),
    Route("/api/auth/resend-verification", resend_verification, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/me", me, methods=["GET"]),
    Route("/api/auth/roles", roles, methods=["GET"]),
    Route("/api/auth/users/{userId}/roles", set_roles, methods=["PUT"]),
]

service = Service("auth", routes, migrations=Path(__file__).parent / "migrations", uses_redis=False)
app = make_app(service)
