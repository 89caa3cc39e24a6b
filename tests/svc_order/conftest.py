"""svc_order in-process, against svc_product, svc_inventory and svc_discount running as real processes.

The three run as `python -m svc_x` on free ports (HTTP and gRPC) with the test environment, as in a
deployment: svc_order keeps its projection of the catalog from svc_product's events (and calls the
catalog's batch endpoint over HTTP for a product it does not know), calls the other two over gRPC, and
the events flow through the test vhost of RabbitMQ both ways. Tests build further svc_order apps beside
the main one to point a dependency at a closed port or to shorten the payment window.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from kit import bus, settings
from kit.app import make_app
from svc_order.app import service
from svc_order.config import OrderConfig
from tests.processes import free_port, started
from tests.support import Publish, eventually, identity, publisher, serve

ADMIN = identity("Admin", email="admin@shop.test")
ADDRESS = {
    "fullName": "Nguyen Van A",
    "phone": "+84912345678",
    "line1": "1 Le Loi",
    "city": "HCMC",
    "country": "VN",
}


def closed_address() -> str:
    """A loopback address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


def buyer() -> dict[str, str]:
    return identity("User")


def checkout_body(**overrides: Any) -> dict[str, Any]:
    return {"shippingAddress": ADDRESS, "paymentMethod": "vnpay", **overrides}


@dataclass(frozen=True)
class Dependencies:
    """Where the real svc_product, svc_inventory and svc_discount of this session listen."""

    product_url: str
    inventory_url: str
    inventory_grpc: str
    discount_url: str
    discount_grpc: str


@pytest.fixture(scope="package")
def dependencies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dependencies]:
    ports = {
        name: free_port() for name in ("PRODUCT", "INVENTORY", "INVENTORY_GRPC", "DISCOUNT", "DISCOUNT_GRPC")
    }
    env = {f"{name}_PORT": str(port) for name, port in ports.items()}
    logs = tmp_path_factory.mktemp("order-dependencies")
    names = ("product", "inventory", "discount")
    with contextlib.ExitStack() as running:
        processes = [
            running.enter_context(started("-m", f"svc_{name}", env=env, log=logs / f"{name}.log"))
            for name in names
        ]
        for name, process in zip(names, processes, strict=True):
            process.wait_ready(f"http://127.0.0.1:{ports[name.upper()]}/health/ready")
        yield Dependencies(
            product_url=f"http://127.0.0.1:{ports['PRODUCT']}",
            inventory_url=f"http://127.0.0.1:{ports['INVENTORY']}",
            inventory_grpc=f"127.0.0.1:{ports['INVENTORY_GRPC']}",
            discount_url=f"http://127.0.0.1:{ports['DISCOUNT']}",
            discount_grpc=f"127.0.0.1:{ports['DISCOUNT_GRPC']}",
        )


def order_settings(deps: Dependencies, **env: str) -> settings.Settings:
    """svc_order's settings pointing at this session's dependencies; `env` overrides any variable."""
    return settings.load(
        "order",
        {
            **os.environ,
            "ORDER_PRODUCT_URL": deps.product_url,
            "ORDER_INVENTORY_GRPC_URL": deps.inventory_grpc,
            "ORDER_DISCOUNT_GRPC_URL": deps.discount_grpc,
            "ORDER_SWEEP_SECONDS": "0.2",
            **env,
        },
        own=OrderConfig,
    )


@contextlib.asynccontextmanager
async def order_app(deps: Dependencies, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another svc_order (same database unless `env` says otherwise), served in-process."""
    async with serve(make_app(service, order_settings(deps, **env))) as client:
        yield client


@dataclass
class Shop:
    """The main svc_order under test, clients of its dependencies, and builders of test data."""

    order: httpx.AsyncClient
    product: httpx.AsyncClient
    inventory: httpx.AsyncClient
    discount: httpx.AsyncClient
    db: asyncpg.Pool
    deps: Dependencies
    category_id: str

    async def new_product(
        self,
        price: float = 100_000,
        stock: int | None = 10,
        seller: dict[str, str] | None = None,
        **fields: Any,
    ) -> str:
        """An active product of `seller` (a new one by default) with `stock` units (None: not stocked)."""
        body = {
            "name": f"Product {uuid.uuid4().hex[:8]}",
            "price": price,
            "categoryId": self.category_id,
            **fields,
        }
        created = await self.product.post("/api/products", json=body, headers=seller or identity("Seller"))
        assert created.status_code == 201, created.text
        product_id: str = created.json()["id"]
        if stock is not None:
            await self.set_stock(product_id, stock)
        return product_id

    async def set_stock(self, product_id: str, quantity: int) -> None:
        async def stocked() -> bool:
            # 503 while svc_inventory creates the row from product.created at the same moment: retry.
            answer = await self.inventory.put(
                f"/api/inventory/{product_id}",
                json={"quantity": quantity, "lowStockThreshold": 0},
                headers=ADMIN,
            )
            assert answer.status_code in (200, 503), answer.text
            return answer.status_code == 200

        await eventually(stocked)

    async def stock(self, product_id: str) -> dict[str, int]:
        """{onHand, reserved, available} of a product as svc_inventory reports it."""
        level = (await self.inventory.get(f"/api/inventory/{product_id}")).json()
        return {k: level[k] for k in ("onHand", "reserved", "available")}

    async def stock_becomes(self, product_id: str, within: float = 10.0, **expected: int) -> None:
        """Wait until the product's stock figures named in `expected` (onHand, reserved, available) hold."""

        async def reached() -> bool:
            stock = await self.stock(product_id)
            return all(stock[k] == v for k, v in expected.items())

        await eventually(reached, within)

    async def coupon(self, **fields: Any) -> dict[str, Any]:
        body = {
            "code": f"T{uuid.uuid4().hex[:10].upper()}",
            "name": "Test",
            "kind": "PERCENTAGE",
            "value": 10,
        }
        created = await self.discount.post("/api/discounts", json={**body, **fields}, headers=ADMIN)
        assert created.status_code == 201, created.text
        coupon: dict[str, Any] = created.json()
        return coupon

    async def usages(self, discount_id: str) -> list[str]:
        """The states of a discount's usages (RESERVED, USED, RELEASED)."""
        usages = await self.discount.get(f"/api/discounts/{discount_id}/usages", headers=ADMIN)
        assert usages.status_code == 200, usages.text
        return [u["state"] for u in usages.json()["items"]]

    async def usages_become(self, discount_id: str, *states: str) -> None:
        async def reached() -> bool:
            return await self.usages(discount_id) == list(states)

        await eventually(reached)

    async def fill(
        self, who: dict[str, str], *lines: tuple[str, int], client: httpx.AsyncClient | None = None
    ) -> None:
        for product_id, quantity in lines:
            added = await (client or self.order).post(
                "/api/cart/items", json={"productId": product_id, "quantity": quantity}, headers=who
            )
            assert added.status_code == 200, added.text

    async def checkout(
        self,
        who: dict[str, str],
        client: httpx.AsyncClient | None = None,
        key: str | None = None,
        **body: Any,
    ) -> httpx.Response:
        headers = {**who, "Idempotency-Key": key} if key else who
        return await (client or self.order).post(
            "/api/orders/checkout", json=checkout_body(**body), headers=headers
        )

    async def order_of(self, who: dict[str, str], order_id: str) -> dict[str, Any]:
        found = await self.order.get(f"/api/orders/{order_id}", headers=who)
        assert found.status_code == 200, found.text
        order: dict[str, Any] = found.json()
        return order

    async def status_becomes(self, who: dict[str, str], order_id: str, status: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            order = await self.order_of(who, order_id)
            return order if order["status"] == status else None

        return await eventually(reached)

    async def outbox(self, routing_key: str, order_id: str) -> list[dict[str, Any]]:
        """The events svc_order wrote about an order."""
        rows = await self.db.fetch(
            "SELECT payload FROM outbox"
            " WHERE routing_key = $1 AND convert_from(payload, 'UTF8')::jsonb->>'orderId' = $2 ORDER BY id",
            routing_key,
            order_id,
        )
        return [msgspec.json.decode(row["payload"]) for row in rows]


@pytest.fixture(scope="package")
async def shop(dependencies: Dependencies) -> AsyncIterator[Shop]:
    # The queues of every consumer involved exist before anything is published (as `make run` does).
    await bus.declare_topology(
        os.environ["AMQP_URL"],
        {
            "order": list(service.handlers),
            "inventory": ["order.confirmed", "order.cancelled", "checkout.aborted"],
            "discount": ["order.confirmed", "order.cancelled", "checkout.aborted"],
        },
    )
    app = make_app(service, order_settings(dependencies))
    async with (
        serve(app) as order,
        httpx.AsyncClient(base_url=dependencies.product_url) as product,
        httpx.AsyncClient(base_url=dependencies.inventory_url) as inventory,
        httpx.AsyncClient(base_url=dependencies.discount_url) as discount,
    ):
        category = await product.post(
            "/api/categories",
            json={"name": f"Orders {uuid.uuid4().hex[:6]}", "slug": f"o{uuid.uuid4().hex[:10]}"},
            headers=ADMIN,
        )
        assert category.status_code == 201, category.text
        yield Shop(
            order, product, inventory, discount, app.state.deps.db, dependencies, category.json()["id"]
        )


@pytest.fixture(scope="package")
async def payments(shop: Shop) -> AsyncIterator[Publish]:
    """Publishes payment events as svc_payment would, once svc_order consumes them."""
    async with publisher("order.payment.success") as send:
        yield send


async def paid(publish: Publish, order_id: str, amount: float) -> None:
    await publish(
        "payment.exchange",
        "payment.success",
        {
            "paymentId": str(uuid.uuid4()),
            "orderId": order_id,
            "amount": amount,
            "method": "vnpay",
            "transactionId": f"T{uuid.uuid4().hex[:8]}",
            "paidAt": "2026-11-25T10:00:00Z",
        },
    )
