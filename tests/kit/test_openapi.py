"""Every service's `/openapi.json` is a valid OpenAPI 3.1 document describing each of its routes."""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.openapi import Undescribed, doc, document, listing, page
from svc_user.schemas import Address

pytestmark = pytest.mark.offline

SERVICES = ("auth", "user", "order", "product", "payment", "inventory", "discount", "notify")
CAMEL = re.compile(r"^[a-z][a-zA-Z]*$")


async def served(name: str) -> dict[str, Any]:
    """The document the service's app serves (no lifespan: it is built when the app is)."""
    app = importlib.import_module(f"svc_{name}.app").app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


@pytest.mark.parametrize("name", SERVICES)
async def test_every_service_serves_a_valid_document(name: str) -> None:
    spec = await served(name)
    validate(spec)
    routes = importlib.import_module(f"svc_{name}.app").routes
    declared = {(r.path, m.lower()) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    assert {(path, method) for path, method, _ in operations(spec)} == declared


@pytest.mark.parametrize("name", SERVICES)
async def test_every_operation_is_described_with_camel_case_path_parameters(name: str) -> None:
    for path, method, op in operations(await served(name)):
        assert op["description"].strip() and op["summary"].strip() and op["operationId"], (path, method)
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert CAMEL.match(param["name"]), f"{path}: {param['name']} is not camelCase"
        assert "503" in op["responses"], "every operation can meet a dependency outage"


def undocumented() -> Callable[[Request], Awaitable[Response]]:
    """A handler of its own (`@doc` marks the handler it decorates)."""

    async def handler(request: Request) -> Response:
        return Response()

    return handler


def test_a_route_without_a_description_is_refused() -> None:
    with pytest.raises(Undescribed, match="/api/things"):
        document("svc_test", [Route("/api/things", undocumented(), methods=["GET"])])
    blank = doc("  ")(undocumented())
    with pytest.raises(Undescribed):
        document("svc_test", [Route("/api/things", blank, methods=["GET"])])


async def test_roles_security_and_their_errors_are_declared() -> None:
    spec = await served("auth")
    op = spec["paths"]["/api/auth/users/{userId}/roles"]["put"]
    assert op["security"] == [{"bearer": []}]
    assert op["x-roles"] == ["Admin"]
    assert {"400", "401", "403", "404", "413", "415", "503"} <= set(op["responses"])
    public = spec["paths"]["/api/auth/register"]["post"]
    assert "security" not in public and "401" not in public["responses"]
    assert "409" in public["responses"]


async def test_list_parameters_have_the_bounds_kit_http_enforces() -> None:
    spec = await served("user")
    op = spec["paths"]["/api/users"]["get"]
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    page_size, empty = params["pageSize"]["anyOf"]
    assert page_size == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    # An empty optional parameter is taken as absent, so the document admits "" too.
    assert empty["maxLength"] == 0
    assert params["sortBy"]["anyOf"][0]["enum"] == ["createdAt", "fullName", "email"]
    assert params["search"]["maxLength"] == 100
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ProfilePage"}
    # ?fields= cuts items down: the page holds whole items or the same with nothing required.
    items = spec["components"]["schemas"]["ProfilePage"]["properties"]["items"]["items"]
    assert items == {
        "anyOf": [{"$ref": "#/components/schemas/Profile"}, {"$ref": "#/components/schemas/ProfileFields"}]
    }
    partial = spec["components"]["schemas"]["ProfileFields"]
    assert (
        "required" not in partial
        and partial["properties"] == spec["components"]["schemas"]["Profile"]["properties"]
    )
    assert next(p for p in op["parameters"] if p["name"] == "fields")["example"] == "id,email,fullName"


def test_a_typed_page_names_its_items() -> None:
    address_page = page(Address)
    assert address_page is page(Address)
    spec = document("svc_test", [Route("/api/a", doc("A", response=address_page)(undocumented()))])
    items = spec["components"]["schemas"]["AddressPage"]["properties"]["items"]
    assert items == {"type": "array", "items": {"$ref": "#/components/schemas/Address"}}
    assert [p.name for p in listing(Address)] == ["page", "pageSize", "fields"]
