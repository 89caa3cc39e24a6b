"""`/openapi.json` built from the code: each handler's `@doc(...)`, its route and msgspec Structs.

A handler declares what a client needs next to its route: a summary, the body and response Structs,
the query parameters (`listing(...)` builds the contract's list parameters from `kit.http`'s own
bounds), non-UUID path parameters, the role it needs and the error statuses beyond those its shape
implies. `document` turns a route table into an OpenAPI 3.1 document and refuses a route that has no
`@doc`, so nothing reaches a client undescribed. The edge merges the services' documents (edge/openapi.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from starlette.routing import BaseRoute, Route

from kit import http
from kit.errors import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])

UUID = {"type": "string", "format": "uuid"}
# Who may call: `public`, `user` (any signed-in caller) or a role; a Seller route also admits Admins.
ROLES: dict[str, tuple[str, ...]] = {"Seller": ("Seller", "Admin"), "Admin": ("Admin",)}
# Every error status an operation can answer, by the name of its shared response.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationError", "Invalid input: a malformed body, a wrong type, an unknown field or parameter"),
    401: ("Unauthorized", "A token is required, or the one sent is not valid"),
    403: ("Forbidden", "The caller's roles do not allow this"),
    404: ("NotFound", "No such resource (a malformed id names nothing either)"),
    409: ("Conflict", "The resource already exists or changed meanwhile"),
    413: ("PayloadTooLarge", "The body is too large"),
    415: ("UnsupportedMediaType", "The body's Content-Type is not the one expected"),
    422: ("BusinessRuleViolation", "The request is well formed but a business rule refuses it"),
    429: ("RateLimited", "Too many requests: retry after `Retry-After` seconds"),
    502: ("BadGateway", "The service behind the edge failed to answer"),
    503: ("ServiceUnavailable", "A dependency is unavailable: retry later"),
    504: ("GatewayTimeout", "The service behind the edge did not answer in time"),
}


class Param(msgspec.Struct, frozen=True):
    """A query parameter or request header: its wire name, JSON schema and meaning."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False
    location: str = "query"
    example: str | None = None


class Binary(msgspec.Struct, frozen=True):
    """A body or an answer that is not JSON: raw bytes of one of `media_types`."""

    media_types: tuple[str, ...]


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    summary: str
    body: Any = None
    # A body the handler can also do without (its fields all have defaults).
    body_optional: bool = False
    response: Any = None
    status: int = 200
    # Other success statuses with the same answer (a 202 beside a 201).
    also: tuple[int, ...] = ()
    auth: str = "public"
    # Query parameters and request headers.
    params: tuple[Param, ...] = ()
    # Path parameters that are not UUIDs, with their schema.
    path: dict[str, dict[str, Any]] = {}
    errors: tuple[int, ...] = ()
    # Answers `ETag` and honours `If-None-Match` with a 304.
    conditional: bool = False


def doc(summary: str, **details: Any) -> Callable[[F], F]:
    """Describe a handler for the OpenAPI document (keywords: the fields of `Operation`)."""
    op = Operation(summary=summary, **details)

    def mark(handler: F) -> F:
        handler.__openapi__ = op  # type: ignore[attr-defined]
        return handler

    return mark


# -- query parameters ---------------------------------------------------------------------------------


def integer(name: str, description: str, low: int, high: int, default: int | None = None) -> Param:
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    return Param(name, schema if default is None else {**schema, "default": default}, description)


def number(name: str, description: str, low: float = 0, required: bool = False) -> Param:
    return Param(name, {"type": "number", "minimum": low}, description, required)


def text(name: str, description: str, max_length: int | None = None, required: bool = False) -> Param:
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    return Param(name, schema, description, required)


def choice(name: str, values: Collection[str], description: str, default: str | None = None) -> Param:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    return Param(name, schema if default is None else {**schema, "default": default}, description)


def uuid_param(name: str, description: str) -> Param:
    return Param(name, UUID, description)


def boolean(name: str, description: str) -> Param:
    return Param(name, {"type": "boolean"}, description)


def header(name: str, description: str, max_length: int) -> Param:
    return Param(name, {"type": "string", "maxLength": max_length}, description, location="header")


def listing(
    item: type[msgspec.Struct],
    *,
    sort: Collection[str] = (),
    search: str | None = None,
    max_page: int = http.MAX_PAGE,
    fields: bool = True,
) -> tuple[Param, ...]:
    """The contract's list parameters as `kit.http.paging`, `sorting` and `search_pattern` read them."""
    params = [
        integer("page", "Page number, from 1", 1, max_page, 1),
        integer("pageSize", "Items per page", 1, http.MAX_PAGE_SIZE, http.DEFAULT_PAGE_SIZE),
    ]
    if fields:
        names = [f.encode_name for f in msgspec.structs.fields(item)]
        described = f"Comma-separated fields each item is cut down to, of: {', '.join(names)}"
        params.append(Param("fields", {"type": "string"}, described, example=",".join(names[:3])))
    if sort:
        params += [
            choice("sortBy", sort, "What the list is ordered by"),
            choice("sortOrder", ("asc", "desc"), "Ascending or descending", "desc"),
        ]
    if search is not None:
        params.append(text("search", f"Case-insensitive text searched in {search}", http.MAX_SEARCH))
    return tuple(params)


@functools.cache
def page(item: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The contract's list shape holding `item`s, as a Struct of its own (`<Item>Page`)."""
    return msgspec.defstruct(
        f"{item.__name__}Page",
        [
            ("items", list[item]),  # type: ignore[valid-type]
            ("page", int),
            ("page_size", int),
            ("total_count", int),
            ("total_pages", int),
        ],
        rename="camel",
        kw_only=True,
    )


# -- the document -------------------------------------------------------------------------------------


class Undescribed(Exception):
    """A route without `@doc`: every operation a client can call must be described."""


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def _described(routes: Sequence[BaseRoute]) -> list[tuple[Route, str, Operation]]:
    operations = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        op = getattr(route.endpoint, "__openapi__", None)
        if not isinstance(op, Operation) or not op.summary.strip():
            raise Undescribed(f"{sorted(route.methods or ())} {route.path} has no @doc(...) description")
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operations.append((route, method.lower(), op))
    return operations


def _content(schema: Any, refs: Mapping[int, Any]) -> dict[str, Any]:
    if isinstance(schema, Binary):
        return {media: {"schema": {"type": "string", "format": "binary"}} for media in schema.media_types}
    if isinstance(schema, tuple):
        return {"application/json": {"schema": {"anyOf": [refs[id(one)] for one in schema]}}}
    return {"application/json": {"schema": refs[id(schema)]}}


def _types(op: Operation) -> list[Any]:
    """The msgspec types an operation's body and answers are made of."""
    found: list[Any] = []
    for declared in (op.body, op.response):
        if declared is None or isinstance(declared, Binary):
            continue
        found += declared if isinstance(declared, tuple) else [declared]
    return found


def _error_statuses(op: Operation, path_params: Sequence[str]) -> set[int]:
    statuses = {503, *op.errors}
    if op.body is not None or op.params:
        statuses.add(400)
    if op.auth != "public":
        statuses.add(401)
    if op.auth in ROLES:
        statuses.add(403)
    if path_params:
        statuses.add(404)
    if op.body is not None:
        statuses |= {413, 415}
    return statuses


def _as_sent(param: Param) -> dict[str, Any]:
    """A parameter's schema as the services read it: an optional query parameter that is empty is
    taken as absent (`?categoryId=` is no filter, as an HTML form sends it), so "" is valid too."""
    if param.required or param.location != "query" or param.schema.keys() <= {"type", "maxLength"}:
        return param.schema
    return {"anyOf": [param.schema, {"type": "string", "maxLength": 0, "description": "as if absent"}]}


def error_responses(statuses: Collection[int]) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{ERRORS[s][0]}"} for s in sorted(statuses)}


def _operation(route: Route, handler_name: str, op: Operation, refs: Mapping[int, Any]) -> dict[str, Any]:
    path_params = _PARAM.findall(route.path)
    success: dict[str, Any] = {"description": "OK" if op.status < 300 else "See `Location`"}
    if op.response is not None:
        success["content"] = _content(op.response, refs)
    responses = {str(op.status): success, **error_responses(_error_statuses(op, path_params))}
    responses |= {str(status): success for status in op.also}
    params = [
        {"name": name, "in": "path", "required": True, "schema": op.path.get(name, UUID)}
        for name in path_params
    ]
    params += [
        {
            "name": p.name,
            "in": p.location,
            "required": p.required,
            "schema": _as_sent(p),
            "description": p.description,
            **({"example": p.example} if p.example is not None else {}),
        }
        for p in op.params
    ]
    if op.conditional:
        success["headers"] = {
            "ETag": {"description": "The version of this answer", "schema": {"type": "string"}}
        }
        responses["304"] = {"description": "Not modified: the `If-None-Match` tag is still current"}
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "schema": {"type": "string"},
                "description": "A previous ETag",
            }
        )
    entry: dict[str, Any] = {
        "operationId": handler_name,
        "summary": op.summary.split(": ", 1)[0].split(" (", 1)[0][:80],
        "description": op.summary,
        "responses": dict(sorted(responses.items())),
    }
    if params:
        entry["parameters"] = params
    if op.auth != "public":
        entry["security"] = [{"bearer": []}]
        entry["x-roles"] = list(ROLES.get(op.auth, ("any signed-in user",)))
        entry["description"] += f"\n\nNeeds a bearer token ({', '.join(entry['x-roles'])})."
    if op.body is not None:
        entry["requestBody"] = {"required": not op.body_optional, "content": _content(op.body, refs)}
    return entry


def _partial_items(components: dict[str, Any], paths: dict[str, dict[str, Any]]) -> None:
    """`?fields=` cuts a list's items down, so a page answered to it holds partial items: its items are
    documented as the whole item or `<Item>Fields` (the same properties, none required)."""
    for item in paths.values():
        for op in item.values():
            if not any(param["name"] == "fields" for param in op.get("parameters", [])):
                continue
            answer = op["responses"].get("200", {}).get("content", {}).get("application/json", {})
            for page_ref in answer.get("schema", {}).get("anyOf", [answer.get("schema", {})]):
                page_schema = components.get(page_ref.get("$ref", "").rsplit("/", 1)[-1], {})
                items = page_schema.get("properties", {}).get("items", {})
                whole = items.get("items", {}).get("$ref")
                if whole is None:
                    continue
                name = whole.rsplit("/", 1)[-1]
                partial = {key: value for key, value in components[name].items() if key != "required"}
                components[f"{name}Fields"] = {**partial, "title": f"{name} (?fields=)"}
                items["items"] = {"anyOf": [{"$ref": whole}, {"$ref": f"#/components/schemas/{name}Fields"}]}


def document(title: str, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`; raises `Undescribed` for a route without `@doc`."""
    operations = _described(routes)
    types: list[Any] = [ErrorBody]
    for _, _, op in operations:
        types += _types(op)
    types = list({id(t): t for t in types}.values())
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = dict(zip(map(id, types), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route, method, op in operations:
        name = route.endpoint.__name__
        if len((route.methods or set()) - {"HEAD"}) > 1:
            name = f"{name}_{method}"  # one handler serving several methods: one operation each
        paths.setdefault(route.path, {})[method] = _operation(route, name, op, refs)
        paths[route.path][method]["tags"] = [title]
    _partial_items(components, paths)
    error = refs[id(ErrorBody)]
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                name: {"description": text_, "content": {"application/json": {"schema": error}}}
                for name, text_ in ERRORS.values()
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
