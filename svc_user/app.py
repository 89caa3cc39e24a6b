"""svc_user: profiles, addresses, preferences, avatars and the admin user search (CONTRACT.md section 4)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Deps, Service, deps, make_app
from kit.errors import BusinessRuleViolation, FieldError, NotFound, ValidationError
from kit.http import JSON, body_of, encode, page_of, paging, path_uuid, search_pattern, sorting
from kit.identity import require_role, require_user
from kit.openapi import Binary, doc, listing, page, text
from svc_user import avatars, events, phones, profiles, store
from svc_user.profiles import AVATAR_VERSION_CHARS, NO_PROFILE, profile_of
from svc_user.schemas import ADDRESS_FIELDS, Address, AddressInput, Preferences, Profile, ProfilePatch

MAX_ADDRESSES = 20
# A versioned URL (`?v=` of the current image) never changes; the bare one is revalidated each time,
# which costs a 304 without the bytes, so a replaced avatar shows at once.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"


async def _profile_json(d: Deps, user_id: uuid.UUID, missing: str) -> Response:
    body = await profiles.cached_profile(d, user_id)
    if body is None:
        raise NotFound(missing)
    return Response(body, media_type="application/json")


@doc("The caller's profile (404 until the email is verified)", response=Profile, auth="user", errors=(404,))
async def get_me(request: Request) -> Response:
    return await _profile_json(deps(request), require_user(request).user_id, NO_PROFILE)


@doc(
    "Change the caller's personal fields (fullName, phone, dateOfBirth)",
    body=ProfilePatch,
    response=Profile,
    auth="user",
    errors=(404,),
)
async def patch_me(request: Request) -> Response:
    who = require_user(request)
    patch = await body_of(request, ProfilePatch)
    d = deps(request)
    async with profiles.change(d, who.user_id) as unit:
        row = unit.current
        if isinstance(patch.phone, str):
            patch.phone = _phone_of(patch.phone, profiles.preferences_of(row).country)
        edits = {
            f.name: value
            for f in msgspec.structs.fields(ProfilePatch)
            if (value := getattr(patch, f.name)) is not msgspec.UNSET and value != row[f.name]
        }
        if edits:
            row = await unit.conn.fetchrow(
                store.UPDATE_PERSONAL,
                who.user_id,
                *(edits.get(column, row[column]) for column in ("full_name", "phone", "date_of_birth")),
            )
            unit.touched(*(f.encode_name for f in msgspec.structs.fields(ProfilePatch) if f.name in edits))
    return JSON(profile_of(row, d.settings.public_url))


def _phone_of(value: str, country: str) -> str:
    """The number in E.164, a national form read in the user's preferred country; a 400 otherwise."""
    if (phone := phones.to_e164(value, country)) is None:
        message = phones.expected(country)
        raise ValidationError(f"Invalid field `phone`: {message}", [FieldError("phone", message)])
    return phone


@doc("Replace the caller's preferences", body=Preferences, response=Preferences, auth="user", errors=(404,))
async def put_preferences(request: Request) -> Response:
    who = require_user(request)
    wanted = await body_of(request, Preferences)
    async with profiles.change(deps(request), who.user_id) as unit:
        current = profiles.preferences_of(unit.current)
        if changed := [
            f"preferences.{f.encode_name}"
            for f in msgspec.structs.fields(Preferences)
            if getattr(current, f.name) != getattr(wanted, f.name)
        ]:
            await unit.conn.execute(store.UPDATE_PREFERENCES, who.user_id, encode(wanted).decode())
            unit.touched(*changed)
    return JSON(wanted)


def _address(row: asyncpg.Record) -> Address:
    return Address(**dict(row))


def _address_values(body: AddressInput) -> tuple[object, ...]:
    return tuple(getattr(body, name) for name in ADDRESS_FIELDS)


@doc(
    "The caller's addresses, the default first",
    response=page(Address),
    auth="user",
    params=listing(Address),
)
async def list_addresses(request: Request) -> Response:
    who = require_user(request)
    page = paging(request.query_params, Address)
    async with deps(request).db.acquire() as conn:
        rows = await conn.fetch(store.ADDRESSES, who.user_id)
    # A user has at most MAX_ADDRESSES, so one query reads them all and the page is a slice.
    items = [_address(row) for row in rows[page.offset : page.offset + page.page_size]]
    return JSON(page_of(items, page, len(rows)))


@doc(
    "Add an address; the first one becomes the default",
    body=AddressInput,
    response=Address,
    status=201,
    auth="user",
    errors=(404, 422),
)
async def add_address(request: Request) -> Response:
    who = require_user(request)
    body = await body_of(request, AddressInput)
    async with profiles.change(deps(request), who.user_id) as unit:
        count = unit.current["address_count"]
        if count >= MAX_ADDRESSES:
            raise BusinessRuleViolation(f"A user keeps at most {MAX_ADDRESSES} addresses; delete one first")
        default = bool(body.is_default) or count == 0
        if default:
            await unit.conn.execute(store.CLEAR_DEFAULT, who.user_id)
        row = await unit.conn.fetchrow(
            store.INSERT_ADDRESS, uuid.uuid4(), who.user_id, *_address_values(body), default
        )
        unit.touched("addresses")
    return JSON(_address(row), 201)


@doc("Replace one of the caller's addresses", body=AddressInput, response=Address, auth="user", errors=(422,))
async def update_address(request: Request) -> Response:
    who = require_user(request)
    address_id = path_uuid(request, "addressId", "Address not found")
    body = await body_of(request, AddressInput)
    async with profiles.change(deps(request), who.user_id) as unit:
        old = await unit.conn.fetchrow(store.ADDRESS, address_id, who.user_id)
        if old is None:
            raise NotFound("Address not found")
        if body.is_default is False and old["is_default"]:
            raise BusinessRuleViolation("This is the default address; make another one the default instead")
        default = old["is_default"] or bool(body.is_default)
        values = _address_values(body)
        if values == tuple(old[name] for name in ADDRESS_FIELDS) and default == old["is_default"]:
            return JSON(_address(old))
        if default and not old["is_default"]:
            await unit.conn.execute(store.CLEAR_DEFAULT, who.user_id)
        row = await unit.conn.fetchrow(store.UPDATE_ADDRESS, address_id, who.user_id, *values, default)
        unit.touched("addresses")
    return JSON(_address(row))


@doc(
    "Delete one of the caller's addresses; the newest other one becomes the default", status=204, auth="user"
)
async def delete_address(request: Request) -> Response:
    who = require_user(request)
    address_id = path_uuid(request, "addressId", "Address not found")
    async with profiles.change(deps(request), who.user_id) as unit:
        was_default = await unit.conn.fetchval(store.DELETE_ADDRESS, address_id, who.user_id)
        if was_default is None:
            raise NotFound("Address not found")
        if was_default:
            await unit.conn.execute(store.PROMOTE_NEWEST, who.user_id)
        unit.touched("addresses")
    return Response(status_code=204)


@doc(
    "Upload the caller's avatar: a PNG, JPEG or WebP body of at most 2 MiB",
    body=Binary(avatars.TYPES),
    response=Profile,
    auth="user",
    errors=(404,),
)
async def put_avatar(request: Request) -> Response:
    who = require_user(request)
    image, data = await avatars.read_image(request)
    etag = hashlib.sha256(data).hexdigest()
    d = deps(request)
    async with profiles.change(d, who.user_id) as unit:
        row = unit.current
        if row["avatar_etag"] != etag:
            row = await unit.conn.fetchrow(store.PUT_AVATAR, who.user_id, image.content_type, etag, data)
            unit.touched("avatarUrl")
    return JSON(profile_of(row, d.settings.public_url))


@doc("Remove the caller's avatar", status=204, auth="user", errors=(404,))
async def delete_avatar(request: Request) -> Response:
    who = require_user(request)
    async with profiles.change(deps(request), who.user_id) as unit:
        if await unit.conn.fetchval(store.DELETE_AVATAR, who.user_id):
            unit.touched("avatarUrl")
    return Response(status_code=204)


def _entity_tags(header: str) -> list[str]:
    """The tags of an If-None-Match header; weak ones compare equal to strong ones (RFC 9110 13.1.2)."""
    return [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()]


@doc(
    "A user's avatar image, with ETag and caching headers",
    response=Binary(avatars.TYPES),
    params=(text("v", "The image's version, as in `avatarUrl`: the answer may then be cached forever"),),
    conditional=True,
)
async def get_avatar(request: Request) -> Response:
    user_id = path_uuid(request, "userId", "Avatar not found")
    tags = _entity_tags(request.headers.get("if-none-match", ""))
    async with deps(request).db.acquire() as conn:
        row = await conn.fetchrow(store.AVATAR, user_id, tags)
    if row is None:
        raise NotFound("Avatar not found")
    etag = row["etag"]
    headers = {
        "ETag": f'"{etag}"',
        "Cache-Control": IMMUTABLE
        if request.query_params.get("v") == etag[:AVATAR_VERSION_CHARS]
        else REVALIDATE,
        # User-supplied bytes: never let a browser second-guess the type we checked.
        "X-Content-Type-Options": "nosniff",
    }
    if row["data"] is None:
        return Response(status_code=304, headers=headers)
    return Response(row["data"], media_type=row["content_type"], headers=headers)


@doc(
    "Search users by name, email or phone (paginated)",
    response=page(Profile),
    auth="Admin",
    params=listing(Profile, sort=store.SORTS, search="name, email and phone"),
)
async def list_users(request: Request) -> Response:
    require_role(request, "Admin")
    page = paging(request.query_params, Profile)
    sort, order = sorting(request.query_params, store.SORTS)
    search = search_pattern(request.query_params)
    d = deps(request)
    async with d.db.acquire() as conn:
        rows, total = await store.search_profiles(conn, search, sort, order, page.page_size, page.offset)
    return JSON(page_of([profile_of(row, d.settings.public_url) for row in rows], page, total))


@doc("Any user's profile", response=Profile, auth="Admin")
async def get_user(request: Request) -> Response:
    require_role(request, "Admin")
    user_id = path_uuid(request, "userId", "User not found")
    return await _profile_json(deps(request), user_id, "User not found")


routes = [
    Route("/api/users/me", get_me, methods=["GET"]),
    Route("/api/users/me", patch_me, methods=["PATCH"]),
    Route("/api/users/me/preferences", put_preferences, methods=["PUT"]),
    Route("/api/users/me/addresses", list_addresses, methods=["GET"]),
    Route("/api/users/me/addresses", add_address, methods=["POST"]),
    Route("/api/users/me/addresses/{addressId}", update_address, methods=["PUT"]),
    Route("/api/users/me/addresses/{addressId}", delete_address, methods=["DELETE"]),
    Route("/api/users/me/avatar", put_avatar, methods=["PUT"]),
    Route("/api/users/me/avatar", delete_avatar, methods=["DELETE"]),
    Route("/api/users", list_users, methods=["GET"]),
    Route("/api/users/{userId}", get_user, methods=["GET"]),
    Route("/api/users/{userId}/avatar", get_avatar, methods=["GET"]),
]

service = Service("user", routes, migrations=Path(__file__).parent / "migrations", handlers=events.handlers)
app = make_app(service)
