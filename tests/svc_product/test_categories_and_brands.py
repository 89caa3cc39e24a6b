from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.svc_product.conftest import admin, new_brand, new_category, new_product, seller, user, word


def find(nodes: list[dict[str, Any]], category_id: str) -> dict[str, Any] | None:
    for node in nodes:
        if node["id"] == category_id:
            return node
        if (found := find(node["children"], category_id)) is not None:
            return found
    return None


async def tree(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/categories")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_the_tree_holds_categories_of_any_depth(client: httpx.AsyncClient) -> None:
    chain = [await new_category(client)]
    for _ in range(5):
        chain.append(await new_category(client, chain[-1]["id"]))
    root = find(await tree(client), chain[0]["id"])
    assert root is not None
    node = root
    for expected in chain[1:]:
        (node,) = node["children"]
        assert node["id"] == expected["id"] and node["name"] == expected["name"]
    assert node["children"] == []

    deepest = (await client.get(f"/api/categories/{chain[-1]['id']}")).json()
    assert [c["id"] for c in deepest["path"]] == [c["id"] for c in chain]
    assert deepest["parentId"] == chain[-2]["id"] and deepest["children"] == []
    middle = (await client.get(f"/api/categories/{chain[2]['id']}")).json()
    assert [c["id"] for c in middle["children"]] == [chain[3]["id"]]


async def test_siblings_follow_their_position(client: httpx.AsyncClient) -> None:
    parent = await new_category(client)
    for name, position in (("second", 2), ("first", 1), ("third", 3)):
        created = await client.post(
            "/api/categories",
            json={"name": name, "slug": word(), "parentId": parent["id"], "position": position},
            headers=admin(),
        )
        assert created.status_code == 201
    node = find(await tree(client), parent["id"])
    assert node is not None and [c["name"] for c in node["children"]] == ["first", "second", "third"]


async def test_moving_a_category_shows_in_the_tree_and_in_its_products(client: httpx.AsyncClient) -> None:
    old_parent, new_parent = await new_category(client), await new_category(client)
    moving = await new_category(client, old_parent["id"])
    product = await new_product(client, moving["id"])
    assert [c["id"] for c in product["category"]["path"]] == [old_parent["id"], moving["id"]]

    moved = await client.patch(
        f"/api/categories/{moving['id']}",
        json={"parentId": new_parent["id"], "name": "Moved"},
        headers=admin(),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["parentId"] == new_parent["id"] and moved.json()["name"] == "Moved"
    node = find(await tree(client), new_parent["id"])
    assert node is not None and [c["name"] for c in node["children"]] == ["Moved"]
    detail = (await client.get(f"/api/products/{product['id']}")).json()
    assert [c["name"] for c in detail["category"]["path"]] == [new_parent["name"], "Moved"]
    listed = await client.get("/api/products", params={"categoryId": new_parent["id"]})
    assert [p["id"] for p in listed.json()["items"]] == [product["id"]]


async def test_a_category_cannot_move_below_itself(client: httpx.AsyncClient) -> None:
    top = await new_category(client)
    child = await new_category(client, top["id"])
    grandchild = await new_category(client, child["id"])
    for parent in (top["id"], grandchild["id"]):
        response = await client.patch(
            f"/api/categories/{top['id']}", json={"parentId": parent}, headers=admin()
        )
        assert response.status_code == 400 and response.json()["details"][0]["field"] == "parentId"


async def test_only_empty_categories_are_deleted(client: httpx.AsyncClient) -> None:
    parent = await new_category(client)
    child = await new_category(client, parent["id"])
    assert (await client.delete(f"/api/categories/{parent['id']}", headers=admin())).status_code == 409
    product = await new_product(client, child["id"])
    assert (await client.delete(f"/api/categories/{child['id']}", headers=admin())).status_code == 409
    await client.delete(f"/api/products/{product['id']}", headers=admin())
    # A deleted product keeps its category for order history.
    assert (await client.delete(f"/api/categories/{child['id']}", headers=admin())).status_code == 409

    empty = await new_category(client, parent["id"])
    assert (await client.delete(f"/api/categories/{empty['id']}", headers=admin())).status_code == 204
    assert (await client.get(f"/api/categories/{empty['id']}")).status_code == 404
    node = find(await tree(client), parent["id"])
    assert node is not None and [c["id"] for c in node["children"]] == [child["id"]]


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (user(), 403), (seller(), 403)])
async def test_catalog_structure_is_written_by_admins_only(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    category, brand = await new_category(client), await new_brand(client)
    requests = [
        ("POST", "/api/categories", {"name": "x"}),
        ("PUT", f"/api/categories/{category['id']}", {"name": "x"}),
        ("PATCH", f"/api/categories/{category['id']}", {"name": "x"}),
        ("DELETE", f"/api/categories/{category['id']}", None),
        ("POST", "/api/brands", {"name": "x"}),
        ("PUT", f"/api/brands/{brand['id']}", {"name": "x"}),
        ("PATCH", f"/api/brands/{brand['id']}", {"name": "x"}),
        ("DELETE", f"/api/brands/{brand['id']}", None),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": ""}, 400, "name"),
        ({"name": "x", "parentId": str(uuid.uuid4())}, 400, "parentId"),
        ({"name": "x", "slug": "UPPER"}, 400, "slug"),
        ({"name": "x", "position": -1}, 400, "position"),
        ({"name": "x", "productCount": 3}, 400, "productCount"),
    ],
)
async def test_bad_categories_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = await client.post("/api/categories", json=body, headers=admin())
    assert response.status_code == status and response.json()["details"][0]["field"] == field


async def test_category_slugs_are_unique(client: httpx.AsyncClient) -> None:
    name = f"Gadgets {word()}"
    first = await client.post("/api/categories", json={"name": name}, headers=admin())
    assert first.status_code == 201 and first.json()["slug"] == name.lower().replace(" ", "-")
    again = await client.post("/api/categories", json={"name": name}, headers=admin())
    assert again.status_code == 409 and again.json()["details"][0]["field"] == "slug"


async def test_a_category_put_keeps_its_slug_when_none_is_given(client: httpx.AsyncClient) -> None:
    category = await new_category(client)
    replaced = await client.put(
        f"/api/categories/{category['id']}", json={"name": "Renamed"}, headers=admin()
    )
    assert replaced.status_code == 200
    assert replaced.json()["slug"] == category["slug"] and replaced.json()["name"] == "Renamed"
    assert (await client.get(f"/api/categories/{category['id']}")).json()["name"] == "Renamed"


async def test_brands_are_listed_by_name_and_renames_reach_product_details(client: httpx.AsyncClient) -> None:
    suffix = word()
    zulu, alpha = await new_brand(client, f"Zulu {suffix}"), await new_brand(client, f"Alpha {suffix}")
    names = [b["name"] for b in (await client.get("/api/brands")).json() if b["name"].endswith(suffix)]
    assert names == [alpha["name"], zulu["name"]]
    assert (await client.get(f"/api/brands/{alpha['id']}")).json() == alpha

    category = await new_category(client)
    product = await new_product(client, category["id"], brandId=alpha["id"])
    renamed = await client.patch(
        f"/api/brands/{alpha['id']}",
        json={"name": f"Omega {suffix}", "logoUrl": "https://img.test/o.png"},
        headers=admin(),
    )
    assert renamed.status_code == 200 and renamed.json()["slug"] == alpha["slug"]
    assert renamed.json()["logoUrl"] == "https://img.test/o.png"
    detail = (await client.get(f"/api/products/{product['id']}")).json()
    assert detail["brand"]["name"] == f"Omega {suffix}"
    listed = [b["name"] for b in (await client.get("/api/brands")).json() if b["name"].endswith(suffix)]
    assert listed == [f"Omega {suffix}", zulu["name"]]


async def test_a_brand_carried_by_a_product_is_not_deleted(client: httpx.AsyncClient) -> None:
    brand, unused = await new_brand(client), await new_brand(client)
    await new_product(client, (await new_category(client))["id"], brandId=brand["id"])
    assert (await client.delete(f"/api/brands/{brand['id']}", headers=admin())).status_code == 409
    assert (await client.delete(f"/api/brands/{unused['id']}", headers=admin())).status_code == 204
    assert (await client.get(f"/api/brands/{unused['id']}")).status_code == 404
    assert unused["id"] not in [b["id"] for b in (await client.get("/api/brands")).json()]


async def test_brand_names_are_unique_in_any_case(client: httpx.AsyncClient) -> None:
    brand = await new_brand(client)
    again = await client.post(
        "/api/brands", json={"name": brand["name"].upper(), "slug": word()}, headers=admin()
    )
    assert again.status_code == 409 and again.json()["details"][0]["field"] == "name"


@pytest.mark.parametrize("path", ["/api/categories/nope", "/api/brands/nope"])
async def test_malformed_ids_name_nothing_so_are_a_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404 and response.json()["error"] == "NotFound"


@pytest.mark.parametrize("path", ["/api/categories/{}", "/api/brands/{}"])
async def test_unknown_ids_are_a_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path.format(uuid.uuid4()))).status_code == 404
    assert (
        await client.patch(path.format(uuid.uuid4()), json={"name": "x"}, headers=admin())
    ).status_code == 404
