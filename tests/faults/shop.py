"""A shopper's moves through the edge, for the fault suite: buyers, stocked products, carts, checkouts,
payments through the sandbox, and the database rows that show what really happened."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt

from kit import settings
from shop.map import SERVICES
from tests.stack import Stack
from tests.support import eventually

ADDRESS = {
    "fullName": "Fault Tester",
    "phone": "+84987654321",
    "line1": "1 Le Loi",
    "city": "Ho Chi Minh City",
    "country": "VN",
}
Headers = dict[str, str]


def buyer(env: dict[str, str]) -> Headers:
    """A signed-in buyer of our own making: the token the auth service would issue to a new account
    (signing up hundreds through argon2 and the mail would measure those, not the fault)."""
    config = settings.load("edge", env)
    now = int(time.time())
    user = uuid.uuid4()
    claims = {
        "sub": str(user),
        "email": f"buyer-{user.hex[:12]}@faults.local",
        "name": "Fault Buyer",
        "roles": ["User"],
        "iat": now,
        "exp": now + 3600,
        "iss": config.jwt_issuer,
        "aud": config.jwt_audience,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, config.jwt_secret.reveal(), algorithm='HS256')}"}


@dataclass
class Statuses:
    """HTTP statuses seen, and when the last answer of each kind came."""

    counts: Counter[int] = field(default_factory=Counter)
    last: dict[int, float] = field(default_factory=dict)

    def saw(self, status: int) -> None:
        self.counts[status] += 1
        self.last[status] = time.monotonic()


@dataclass
class Shop:
    edge: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    env: dict[str, str]
    seller: Headers
    databases: dict[str, str]

    async def rows(self, database: str, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.databases[database])
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def product(self, units: int, price: float = 100_000) -> str:
        """A new product of the seed seller's, stocked with `units` once inventory has heard of it."""
        categories = (await self.edge.get("/api/categories")).json()
        body = {
            "name": f"Fault kettle {uuid.uuid4().hex[:8]}",
            "price": price,
            "categoryId": categories[0]["id"],
        }
        created = await self.edge.post("/api/products", json=body, headers=self.seller)
        assert created.status_code == 201, created.text
        product: str = created.json()["id"]

        async def stocked() -> bool:
            level = {"quantity": units, "lowStockThreshold": 0}
            answer = await self.edge.put(f"/api/inventory/{product}", json=level, headers=self.seller)
            return answer.status_code == 200

        await eventually(stocked, within=20, interval=0.05)
        return product

    async def stock(self, product: str) -> dict[str, int]:
        level = (await self.edge.get(f"/api/inventory/{product}")).json()
        return {key: level[key] for key in ("onHand", "reserved", "available")}

    async def fill(self, who: Headers, product: str, quantity: int = 1) -> None:
        added = await self.edge.post(
            "/api/cart/items", json={"productId": product, "quantity": quantity}, headers=who
        )
        assert added.status_code == 200, added.text

    async def checkout(self, who: Headers, method: str = "vnpay", key: str | None = None) -> httpx.Response:
        """One attempt; a client retrying passes the same `key`, so a retry never orders twice."""
        idempotency = {"Idempotency-Key": key or str(uuid.uuid4())}
        body = {"shippingAddress": ADDRESS, "paymentMethod": method}
        return await self.edge.post("/api/orders/checkout", json=body, headers={**who, **idempotency})

    async def pay(
        self, order: dict[str, Any], outcome: str = "success", notify: bool = True
    ) -> dict[str, Any]:
        """The buyer pays on the sandbox's page; the gateway notifies the shop unless `notify` is off."""
        body = {"paymentUrl": order["paymentUrl"], "outcome": outcome, "notify": notify}
        paid = await self.sandbox.post("/sandbox/pay", json=body)
        assert paid.status_code == 200, paid.text
        result: dict[str, Any] = paid.json()
        return result

    async def payment_exists(self, order_id: str) -> bool:
        rows = await self.rows("payment", "SELECT 1 FROM payments WHERE order_id = $1", uuid.UUID(order_id))
        return bool(rows)

    async def statuses_of(self, order_ids: list[str]) -> Counter[str]:
        rows = await self.rows(
            "order", "SELECT status FROM orders WHERE id = ANY($1::uuid[])", [uuid.UUID(o) for o in order_ids]
        )
        return Counter(row["status"] for row in rows)


@contextlib.asynccontextmanager
async def shop_of(stack: Stack) -> AsyncIterator[Shop]:
    """A shopper at `stack`'s edge and payment sandbox, with the seed seller signed in, reading each
    service's database straight from the server (past any pooler)."""
    limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
    async with (
        httpx.AsyncClient(base_url=stack.url("edge"), timeout=30, limits=limits) as edge,
        httpx.AsyncClient(base_url=stack.url("sandbox"), timeout=30) as sandbox,
    ):
        login = {"email": "seller@shop.local", "password": "Seller123!"}
        token = (await edge.post("/api/auth/login", json=login)).json()["accessToken"]
        databases = {
            spec.name: settings.load(spec.name, stack.env).database_direct_url or ""
            for spec in SERVICES.values()
            if spec.database
        }
        yield Shop(edge, sandbox, dict(stack.env), {"Authorization": f"Bearer {token}"}, databases)
