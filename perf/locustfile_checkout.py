"""A shopper's session through the edge, as a weighted task table, for exploratory load with Locust.

    .venv/bin/locust -f perf/locustfile_checkout.py --host http://127.0.0.1:5010 \\
        --users 100 --spawn-rate 20 --run-time 1m --headless

Before the shoppers start, one fresh account each is registered and verified straight at svc_auth and
the mail sink (as perf/checkout_bench.py does: logins are argon2-bound and rate-limited at the edge, and
not what this measures). Each shopper then browses, fills its cart and checks out in the proportions of
the task table. Run the stack with the edge's limits raised (RATE_LIMIT_USER_PER_MINUTE,
RATE_LIMIT_IP_PER_HOUR). For fixed-rate figures and the CPU each process spends per order, use
`perf/checkout_bench.py`.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path

from locust import FastHttpUser, between, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checkout_bench import accounts

from kit import settings
from kit.seed import demo_product_id

ADDRESS = {
    "fullName": "Locust Shopper",
    "phone": "+84900000001",
    "line1": "1 Load St",
    "city": "HCMC",
    "country": "VN",
}
DEMO_PRODUCTS = 10_000
TOKENS: list[str] = []


@events.test_start.add_listener
def _accounts(environment: Environment, **_: object) -> None:
    """Every shopper's account, registered before any shopper starts."""
    count = environment.parsed_options.num_users if environment.parsed_options else 10
    TOKENS.extend(
        asyncio.run(accounts(count, settings.service_url("auth"), settings.service_url("mailsink")))
    )


class Shopper(FastHttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {TOKENS.pop()}"}

    @staticmethod
    def _product() -> str:
        return str(demo_product_id(random.randint(1, DEMO_PRODUCTS)))

    @task(10)
    def browse(self) -> None:
        self.client.get(f"/api/products?page={random.randint(1, 50)}&pageSize=20", name="/api/products")

    @task(8)
    def look_at_a_product(self) -> None:
        self.client.get(f"/api/products/{self._product()}", name="/api/products/{id}")

    @task(5)
    def add_to_cart(self) -> None:
        body = {"productId": self._product(), "quantity": random.randint(1, 2)}
        self.client.post("/api/cart/items", json=body, headers=self.auth)

    @task(4)
    def view_cart(self) -> None:
        self.client.get("/api/cart", headers=self.auth)

    @task(2)
    def checkout(self) -> None:
        body = {"shippingAddress": ADDRESS, "paymentMethod": random.choice(("vnpay", "momo", "zalopay"))}
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            "/api/orders/checkout", json=body, headers=headers, catch_response=True
        ) as answer:
            if answer.status_code == 422:  # an empty cart or a sold-out product: a business answer
                answer.success()

    @task(1)
    def order_history(self) -> None:
        self.client.get("/api/orders?pageSize=10", headers=self.auth)
