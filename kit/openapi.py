"""`/openapi.json` built from the msgspec Structs that handlers declare with `@doc(...)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from starlette.routing import BaseRoute, Route

from kit.errors import ErrorBody

F = TypeVar("F", bound=Callable[..., Any])


class Operation(msgspec.Struct, frozen=True):
    summary: str
    body: Any = None
    response: Any = None
    status: int = 200
    auth: str = "public"


def doc(
    summary: str, *, body: Any = None, response: Any = None, status: int = 200, auth: str = "public"
) -> Callable[[F], F]:
    """Describe a handler for the OpenAPI document. `auth` is public, user or a role name."""

    def mark(handler: F) -> F:
        handler.__openapi__ = Operation(summary, body, response, status, auth)  # type: ignore[attr-defined]
        return handler

    return mark


def document(title: str, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    operations: list[tuple[Route, str, Operation]] = []
    types: list[Any] = [ErrorBody]
    for route in routes:
        op = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        if not isinstance(route, Route) or op is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operations.append((route, method.lower(), op))
        types += [t for t in (op.body, op.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    refs = dict(zip(map(id, types), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route, method, op in operations:
        responses: dict[str, Any] = {
            str(op.status): {"description": "OK"},
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": refs[id(ErrorBody)]}},
            },
        }
        if op.response is not None:
            responses[str(op.status)]["content"] = {"application/json": {"schema": refs[id(op.response)]}}
        entry: dict[str, Any] = {"summary": op.summary, "responses": responses, "x-auth": op.auth}
        if op.auth != "public":
            entry["security"] = [{"bearer": []}]
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[id(op.body)]}},
            }
        paths.setdefault(route.path, {})[method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
