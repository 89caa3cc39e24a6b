"""The edge's merged document: every service's operations as clients see them through the edge."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate

from edge.docs import ApiDocs
from edge.openapi import merge
from edge.routes import ROUTES, Route, RouteTable
from edge.upstream import Cluster, Pool
from kit.openapi import document
from tests.edge.support import CLUSTERS

pytestmark = pytest.mark.offline


def service_documents() -> dict[str, dict[str, Any]]:
    """Each service's document as it goes over the wire."""
    documents = {}
    for name in CLUSTERS:
        routes = importlib.import_module(f"svc_{name}.app").routes
        documents[name] = orjson.loads(orjson.dumps(document(f"svc_{name}", routes)))
    return documents


def test_the_merged_document_is_valid_and_holds_every_service_operation() -> None:
    documents = service_documents()
    merged = merge(documents, RouteTable())
    validate(merged)
    count = sum(len(item) for doc in documents.values() for item in doc["paths"].values())
    assert sum(len(item) for item in merged["paths"].values()) == count
    assert merged["x-missing"] == []
    ids = [op["operationId"] for item in merged["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_edge_errors_and_security_follow_the_route_table() -> None:
    merged = merge(service_documents(), RouteTable())
    login = merged["paths"]["/api/auth/login"]["post"]
    assert "security" not in login
    assert login["responses"]["429"] == {"$ref": "#/components/responses/EdgeRateLimited"}
    assert "Limited to 10 requests per 60 s" in login["description"]
    assert {"401", "413", "502", "503", "504"} <= set(login["responses"])
    detail = merged["paths"]["/api/products/{productId}"]["get"]
    assert "security" not in detail and "413" not in detail["responses"]
    cart = merged["paths"]["/api/cart"]["get"]
    assert cart["security"] == [{"bearer": []}]
    assert "Retry-After" in merged["components"]["responses"]["EdgeRateLimited"]["headers"]


def test_an_operation_no_edge_route_reaches_is_left_out() -> None:
    only_auth = RouteTable([route for route in ROUTES if route.cluster == "auth"])
    merged = merge(service_documents(), only_auth)
    assert merged["paths"] and all(path.startswith("/api/auth/") for path in merged["paths"])


def test_a_protected_edge_route_adds_the_token_the_service_did_not_ask_for() -> None:
    documents = {"auth": service_documents()["auth"]}
    locked = RouteTable([Route("/api/auth/**", "auth")])
    register = merge(documents, locked)["paths"]["/api/auth/register"]["post"]
    assert register["security"] == [{"bearer": []}]


def test_components_named_alike_but_different_are_kept_apart() -> None:
    def doc_with(schema: dict[str, Any], path: str) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Thing"}
        answer = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        return {
            "paths": {path: {"get": {"operationId": "get_thing", "responses": answer}}},
            "components": {"schemas": {"Thing": schema}},
        }

    merged = merge(
        {
            "auth": doc_with({"type": "string"}, "/api/auth/thing"),
            "user": doc_with({"type": "integer"}, "/api/users/thing"),
        },
        RouteTable(),
    )
    validate(merged)
    schemas = merged["components"]["schemas"]
    assert schemas["Thing"] == {"type": "string"} and schemas["user.Thing"] == {"type": "integer"}
    user_op = merged["paths"]["/api/users/thing"]["get"]
    assert user_op["operationId"] == "user_get_thing"
    schema = user_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/user.Thing"}


async def test_the_docs_say_which_services_are_missing_until_they_answer() -> None:
    clusters = {
        name: Cluster(
            name, [Pool(f"http://{name}.internal:80", max_connections=1, connect_timeout=1, idle_timeout=1)]
        )
        for name in ("auth", "user")
    }
    documents = service_documents()
    down = {"user"}

    def serve(request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".")[0]
        if name in down:
            return httpx.Response(503)
        return httpx.Response(200, json=documents[name])

    docs = ApiDocs(clusters, RouteTable())
    page = docs.pages()["/openapi.json"]
    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        await docs.fetch(client)
        partial = orjson.loads(page()[2])
        assert partial["x-missing"] == ["user"] and not docs.complete
        assert "/api/auth/login" in partial["paths"] and "/api/users/me" not in partial["paths"]
        down.clear()
        await docs.fetch(client)
    whole = orjson.loads(page()[2])
    assert docs.complete and whole["x-missing"] == [] and "/api/users/me" in whole["paths"]
    validate(whole)


def test_the_docs_page_and_its_assets_come_from_the_package() -> None:
    pages = ApiDocs({}, RouteTable()).pages()
    status, head, html = pages["/docs"]()
    assert status == 200 and b"text/html" in head
    assert b'src="/docs/swagger-ui-bundle.js"' in html and b'url: "/openapi.json"' in html
    status, head, script = pages["/docs/swagger-ui-bundle.js"]()
    assert status == 200 and b"text/javascript" in head and len(script) > 100_000
