"""msgspec on the wire: request decoding that turns bad input into 400s, and fast JSON responses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from kit.errors import FieldError, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationError, invalid

T = TypeVar("T")

MAX_JSON_BODY = 1024 * 1024


class Model(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of every request and response Struct: camelCase on the wire, unknown fields refused."""


_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_PATH = re.compile(r"at `\$\.?(.*?)`$")
_OBJECT_FIELD = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_NAMED = re.compile(r"^([A-Za-z][\w.\[\]]*): (.+)$", re.S)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


class JSON(Response):
    """A JSON response encoded by msgspec; accepts Structs, dicts, lists and plain values."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return _encoder.encode(content)


def decoder(model: type[T]) -> msgspec.json.Decoder[T]:
    """The decoder for `model`, built once and reused."""
    found = _decoders.get(model)
    if found is None:
        found = _decoders[model] = msgspec.json.Decoder(model)
    return found


def decode(body: bytes, model: type[T]) -> T:
    """Decode `body` as `model`, mapping every failure to a 400 with the offending field."""
    if not body:
        raise ValidationError("A JSON request body is required")
    try:
        return decoder(model).decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        field = match.group(1) if match else ""
        message = _PATH.sub("", text).strip().rstrip(" -")
        if named := _OBJECT_FIELD.search(message):
            # "Object contains unknown field `x`" / "missing required field `x`" name a field inside.
            field = f"{field}.{named.group(1)}" if field else named.group(1)
        elif not field and (named := _NAMED.match(message)):
            # `__post_init__` checks raise ValueError("field: message") to name their field.
            field, message = named.group(1), named.group(2)
        raise ValidationError(
            f"Invalid field `{field}`: {message}" if field else message,
            [FieldError(field or "body", message)],
        ) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"Malformed JSON: {exc}", [FieldError("body", "malformed JSON")]) from None


async def body_of(request: Request, model: type[T]) -> T:
    """Read and decode a JSON request body, refusing anything that is not JSON or is too large."""
    content_type = request.headers.get("content-type", "application/json")
    if not content_type.split(";", 1)[0].strip().lower().endswith("json"):
        raise UnsupportedMediaType(f"Expected Content-Type application/json, got {content_type}")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"JSON bodies are limited to {MAX_JSON_BODY} bytes")
    return decode(await request.body(), model)


def path_uuid(request: Request, name: str, missing: str) -> uuid.UUID:
    """The UUID path parameter `name`; a malformed one names nothing that exists, so it is a 404."""
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise NotFound(missing) from None


def query_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise invalid(name, f"{name} must be between {low} and {high}")
    return value


def sorting(
    query: Mapping[str, str], columns: Collection[str], default: str = "createdAt"
) -> tuple[str, str]:
    """`?sortBy=` (one of `columns`, else `default`) and `?sortOrder=asc|desc` (default desc), as the
    pair (sortBy, "ASC" or "DESC") that services key their prepared ORDER BY variants with."""
    by = query.get("sortBy") or default
    if by not in columns:
        raise invalid("sortBy", f"sortBy must be one of {', '.join(columns)}")
    direction = (query.get("sortOrder") or "desc").upper()
    if direction not in ("ASC", "DESC"):
        raise invalid("sortOrder", "sortOrder must be asc or desc")
    return by, direction


MAX_SEARCH = 100
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def like_pattern(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_pattern(query: Mapping[str, str]) -> str | None:
    """`?search=` as an ILIKE pattern, None when absent or blank; at most `MAX_SEARCH` characters."""
    search = (query.get("search") or "").strip()
    if not search:
        return None
    if len(search) > MAX_SEARCH:
        raise invalid("search", f"search is at most {MAX_SEARCH} characters")
    return like_pattern(search)


class Paging(msgspec.Struct, frozen=True):
    page: int
    page_size: int
    # `?fields=`: the wire names each item is cut down to, in the order asked; None for whole items.
    fields: tuple[str, ...] | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


_wire_names: dict[type[msgspec.Struct], tuple[str, ...]] = {}


def paging(query: Mapping[str, str], item: type[msgspec.Struct]) -> Paging:
    """`?page=` from 1, `?pageSize=` 1..100 (default 20) and `?fields=` of a list of `item`s, as the
    contract's conventions say; an unknown field is a 400 naming the ones there are."""
    page = query_int(query, "page", 1, 1, MAX_PAGE)
    page_size = query_int(query, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    raw = query.get("fields")
    if not raw:
        return Paging(page, page_size)
    known = _wire_names.get(item)
    if known is None:
        known = _wire_names[item] = tuple(f.encode_name for f in msgspec.structs.fields(item))
    wanted = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if unknown := [name for name in wanted if name not in known]:
        raise invalid("fields", f"Unknown fields: {', '.join(unknown)}; there are {', '.join(known)}")
    return Paging(page, page_size, wanted or None)


class Page(msgspec.Struct, rename="camel", kw_only=True):
    items: list[Any]
    page: int
    page_size: int
    total_count: int
    total_pages: int


def page_of(items: list[Any], paging: Paging, total: int) -> Page:
    """The contract's list shape, each item cut down to the fields asked for, if any."""
    pages = (total + paging.page_size - 1) // paging.page_size
    if paging.fields is not None:
        names = paging.fields
        items = [{name: whole[name] for name in names} for whole in msgspec.to_builtins(items)]
    return Page(
        items=items, page=paging.page, page_size=paging.page_size, total_count=total, total_pages=pages
    )
