from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiormq
import httpx
import msgspec
import pytest
from pamqp import commands as spec

from tests.support import eventually, identity
from tests.svc_product.conftest import bound, new_product, seller, user


async def review(
    client: httpx.AsyncClient, product_id: str, headers: dict[str, str], rating: int = 5, comment: str = ""
) -> httpx.Response:
    return await client.post(
        f"/api/products/{product_id}/reviews", json={"rating": rating, "comment": comment}, headers=headers
    )


async def test_reviews_keep_the_products_rating_current(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    reviewer = user()
    first = await review(client, product["id"], reviewer, 5, "  Lovely  ")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["rating"] == 5 and body["comment"] == "Lovely" and body["userId"] == reviewer["X-User-Id"]
    assert body["productId"] == product["id"] and body["authorName"] == "Customer"
    for rating in (4, 2):
        assert (await review(client, product["id"], user(), rating)).status_code == 201
    detail = (await client.get(f"/api/products/{product['id']}")).json()
    assert detail["rating"] == 3.67 and detail["reviewCount"] == 3
    listed = (await client.get("/api/products", params={"categoryId": category["id"]})).json()["items"]
    assert listed[0]["rating"] == 3.67 and listed[0]["reviewCount"] == 3


async def test_many_reviews_at_once_are_all_counted(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    responses = await asyncio.gather(*(review(client, product["id"], user(), 1 + n % 5) for n in range(20)))
    assert {r.status_code for r in responses} == {201}
    detail = (await client.get(f"/api/products/{product['id']}")).json()
    assert detail["reviewCount"] == 20 and detail["rating"] == 3.0


async def test_one_review_per_user_and_product(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    product = await new_product(client, category["id"])
    reviewer = user()
    assert (await review(client, product["id"], reviewer)).status_code == 201
    again = await review(client, product["id"], reviewer, 1)
    assert again.status_code == 409 and again.json()["error"] == "Conflict"
    detail = (await client.get(f"/api/products/{product['id']}")).json()
    assert detail["reviewCount"] == 1 and detail["rating"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({}, "rating"),
        ({"rating": 3, "comment": "x" * 2001}, "comment"),
        ({"rating": 3, "userId": str(uuid.uuid4())}, "userId"),
    ],
)
async def test_bad_reviews_are_a_400(
    client: httpx.AsyncClient, category: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    product = await new_product(client, category["id"])
    response = await client.post(f"/api/products/{product['id']}/reviews", json=body, headers=user())
    assert response.status_code == 400 and response.json()["details"][0]["field"] == field
    assert (await client.get(f"/api/products/{product['id']}")).json()["reviewCount"] == 0


async def test_who_may_review(client: httpx.AsyncClient, category: dict[str, Any]) -> None:
    owner = seller()
    product = await new_product(client, category["id"], owner)
    assert (await review(client, product["id"], {})).status_code == 401
    own = await review(client, product["id"], owner)
    assert own.status_code == 403 and own.json()["error"] == "Forbidden"
    assert (await review(client, product["id"], seller())).status_code == 201
    draft = await new_product(client, category["id"], owner, status="draft")
    assert (await review(client, draft["id"], user())).status_code == 404
    assert (await review(client, str(uuid.uuid4()), user())).status_code == 404


async def test_reviews_are_listed_newest_first_and_paged(
    client: httpx.AsyncClient, category: dict[str, Any]
) -> None:
    product = await new_product(client, category["id"])
    for rating in (1, 5, 3):
        await review(client, product["id"], user(), rating)
    page = (await client.get(f"/api/products/{product['id']}/reviews", params={"pageSize": 2})).json()
    assert (
        [r["rating"] for r in page["items"]] == [3, 5] and page["totalCount"] == 3 and page["totalPages"] == 2
    )
    last = (
        await client.get(f"/api/products/{product['id']}/reviews", params={"page": 2, "pageSize": 2})
    ).json()
    assert [r["rating"] for r in last["items"]] == [1]
    best = (await client.get(f"/api/products/{product['id']}/reviews", params={"sortBy": "rating"})).json()
    assert [r["rating"] for r in best["items"]] == [5, 3, 1]
    beyond = (await client.get(f"/api/products/{product['id']}/reviews", params={"page": 9})).json()
    assert beyond["items"] == [] and beyond["totalCount"] == 3
    bad = await client.get(f"/api/products/{product['id']}/reviews", params={"sortBy": "helpful"})
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "sortBy"
    assert (await client.get(f"/api/products/{uuid.uuid4()}/reviews")).status_code == 404


class UserEvents:
    """Publishes user events the way svc_auth's and svc_user's relays do."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel

    async def send(self, exchange: str, routing_key: str, **payload: Any) -> None:
        event = {"eventId": str(uuid.uuid4()), "traceparent": "", **payload}
        confirm = await self.channel.basic_publish(
            msgspec.json.encode(event),
            exchange=exchange,
            routing_key=routing_key,
            properties=spec.Basic.Properties(content_type="application/json", delivery_mode=2),
        )
        assert isinstance(confirm, spec.Basic.Ack)


@pytest.fixture
async def user_events(client: httpx.AsyncClient, broker: aiormq.abc.AbstractConnection) -> UserEvents:
    # Until the consumer has bound its queues, a published event would be dropped as unroutable.
    for queue in ("product.user.verified", "product.user.profile.updated"):
        await eventually(functools.partial(bound, broker, queue))
    return UserEvents(await broker.channel(publisher_confirms=True))


async def test_review_authors_show_their_current_name(
    client: httpx.AsyncClient, category: dict[str, Any], user_events: UserEvents
) -> None:
    product = await new_product(client, category["id"])
    user_id = uuid.uuid4()
    reviews_path = f"/api/products/{product['id']}/reviews"

    async def reviewed_as(name: str) -> bool:
        items = (await client.get(reviews_path)).json()["items"]
        return bool(items) and items[0]["authorName"] == name

    assert (await review(client, product["id"], identity("User", user_id=user_id))).status_code == 201
    assert await reviewed_as("Customer")  # no name on record yet; the page is cached from here on

    now = datetime.now(UTC)
    await user_events.send(
        "auth.exchange", "user.verified", userId=str(user_id), email="a@shop.test", fullName="Ann Lee",
        occurredAt=now.isoformat(),
    )  # fmt: skip
    await eventually(lambda: reviewed_as("Ann Lee"))
    await user_events.send(
        "user.exchange", "user.profile.updated", userId=str(user_id), fullName="Ann Tran",
        occurredAt=(now + timedelta(seconds=1)).isoformat(), updatedFields=["fullName"],
    )  # fmt: skip
    await eventually(lambda: reviewed_as("Ann Tran"))
    # An older event arriving late does not bring the old name back.
    await user_events.send(
        "user.exchange", "user.profile.updated", userId=str(user_id), fullName="Ann Old",
        occurredAt=(now - timedelta(days=1)).isoformat(),
    )  # fmt: skip
    await asyncio.sleep(0.3)
    assert await reviewed_as("Ann Tran")
    again = await review(
        client, (await new_product(client, category["id"]))["id"], identity("User", user_id=user_id)
    )
    assert again.json()["authorName"] == "Ann Tran"
