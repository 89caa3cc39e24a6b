"""The API as its clients see it: the services' OpenAPI documents merged, with what the edge adds.

Each service describes its own operations (kit/openapi.py). Through the edge an operation also:
- needs a bearer token when its edge route is not public (the edge answers 401 before the service);
- may answer 401 anyway when a token is sent and is not valid (the edge checks every token it sees);
- may answer 429 (rate limits, with `Retry-After`), 413 when it takes a body, and 502/503/504 when the
  service fails, is unreachable or is too slow.
An operation no edge route reaches is left out: a client cannot call it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from edge.routes import Route, RouteTable

_TEMPLATE = re.compile(r"{[^}/]+}")
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["error", "message", "details"],
}
# The edge's own answers, by status: (component name, description).
EDGE_ERRORS = {
    401: ("EdgeUnauthorized", "No bearer token where one is needed, or one that is not valid"),
    413: ("EdgePayloadTooLarge", "The body is larger than the edge accepts"),
    429: ("EdgeRateLimited", "Too many requests from this caller: retry after `Retry-After` seconds"),
    502: ("EdgeBadGateway", "The service failed to answer"),
    503: ("EdgeServiceUnavailable", "No destination of the service is available"),
    504: ("EdgeGatewayTimeout", "The service did not answer in time"),
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (name, description) in EDGE_ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EdgeError"}}},
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
        responses[name] = response
    return responses


def _rename_refs(node: Any, renamed: Mapping[str, str]) -> Any:
    """`node` with every `$ref` to a renamed component pointing at its new name."""
    if isinstance(node, dict):
        return {
            key: renamed.get(value, value) if key == "$ref" else _rename_refs(value, renamed)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rename_refs(item, renamed) for item in node]
    return node


def _edge_route(routes: RouteTable, method: str, path: str) -> Route | None:
    return routes.match(method.upper(), _TEMPLATE.sub("x", path))


def _through_edge(operation: dict[str, Any], route: Route) -> dict[str, Any]:
    """The service's operation as a client of the edge sees it."""
    op = copy.deepcopy(operation)
    statuses = [401, 429, 502, 503, 504] + ([413] if "requestBody" in op else [])
    for status in statuses:
        # Where the service declared the status itself, the edge's wording takes over: both may answer.
        op["responses"][str(status)] = {"$ref": f"#/components/responses/{EDGE_ERRORS[status][0]}"}
    op["responses"] = dict(sorted(op["responses"].items()))
    if not route.public and "security" not in op:
        op["security"] = [{"bearer": []}]
        op["description"] = op.get("description", "") + "\n\nNeeds a bearer token (checked by the edge)."
    if route.limit is not None:
        op["description"] = op.get("description", "") + (
            f"\n\nLimited to {route.limit.count} requests per {route.limit.seconds:g} s per caller."
        )
    return op


def merge(
    documents: Mapping[str, dict[str, Any]], routes: RouteTable, missing: Iterable[str] = ()
) -> dict[str, Any]:
    """One OpenAPI 3.1 document of every operation reachable through the edge.

    `documents` are the services' documents by cluster name; `missing` names the clusters whose
    document could not be read (said in `info`, so a partial document is never taken for the whole).
    """
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    responses: dict[str, Any] = {}
    operation_ids: set[str] = set()
    tags = []
    for cluster, source in documents.items():
        components = source.get("components", {})
        # A component named alike in two services but different is kept apart as `<cluster>.<name>`.
        renamed = {
            (kind, name): f"{cluster}.{name}"
            for kind, merged in (("schemas", schemas), ("responses", responses))
            for name, value in components.get(kind, {}).items()
            if merged.get(name, value) != value
        }
        source = _rename_refs(
            source,
            {
                f"#/components/{kind}/{old}": f"#/components/{kind}/{new}"
                for (kind, old), new in renamed.items()
            },
        )
        for kind, merged in (("schemas", schemas), ("responses", responses)):
            for name, value in source.get("components", {}).get(kind, {}).items():
                merged[renamed.get((kind, name), name)] = value
        for path, item in source.get("paths", {}).items():
            for method, operation in item.items():
                route = _edge_route(routes, method, path) if method in METHODS else None
                if route is None:
                    continue
                op = _through_edge(operation, route)
                if op.get("operationId") in operation_ids:
                    op["operationId"] = f"{cluster}_{op['operationId']}"
                operation_ids.add(op.get("operationId", ""))
                paths.setdefault(path, {})[method] = op
        tags.append({"name": source.get("info", {}).get("title", cluster)})
    description = "Every service of the shop through its gateway; errors are `{error, message, details}`."
    if missing := sorted(missing):
        description += f"\n\n**Incomplete**: the documents of {', '.join(missing)} could not be read yet."
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shop API", "version": "1.0.0", "description": description},
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**schemas, "EdgeError": _ERROR_SCHEMA},
            "responses": {**responses, **_responses()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "x-missing": missing,
    }
