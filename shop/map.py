"""The platform's map: its processes with their ports and databases (contract section 1), the exchange
of every routing key (section 6), and the fixed ids the dev seed gives its accounts and demo products.

Data only, importing nothing of the shop: kit reads it (default ports, database names, where an event is
published) and so do the services (the seed ids), without either knowing the other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Where a process listens and which database it owns, by the contract's table."""

    name: str
    http_port: int
    database: str | None = None
    grpc_port: int | None = None


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("edge", 5010),
        ServiceSpec("auth", 5001, "auth_db"),
        ServiceSpec("user", 5002, "user_db"),
        ServiceSpec("order", 5003, "order_db"),
        ServiceSpec("product", 5004, "product_db"),
        ServiceSpec("payment", 5005, "payment_db"),
        ServiceSpec("inventory", 5006, "inventory_db", 5106),
        ServiceSpec("discount", 5007, "discount_db", 5107),
        ServiceSpec("notify", 5008, "notification_db"),
        ServiceSpec("sandbox", 5009),
        ServiceSpec("mailsink", 8025),
        ServiceSpec("smssink", 8026),
        ServiceSpec("pushsink", 8027),
        ServiceSpec("tracesink", 4318),
    )
}


def services_with_a_database() -> list[ServiceSpec]:
    """The eight services (each `svc_<name>/`), in the table's order."""
    return [spec for spec in SERVICES.values() if spec.database]


# Which exchange carries each routing key.
EXCHANGES: dict[str, str] = {
    "user.registered": "auth.exchange",
    "user.verified": "auth.exchange",
    "user.profile.updated": "user.exchange",
    "user.preferences.updated": "user.exchange",
    "order.created": "order.exchange",
    "order.confirmed": "order.exchange",
    "order.cancelled": "order.exchange",
    "checkout.aborted": "order.exchange",  # ours, beside the contract's table (README, "Events")
    "payment.success": "payment.exchange",
    "payment.failed": "payment.exchange",
    "payment.refunded": "payment.exchange",
    "inventory.reserved": "inventory.exchange",
    "inventory.released": "inventory.exchange",
    "inventory.low-stock": "inventory.exchange",
    "inventory.availability-changed": "inventory.exchange",  # ours (README, "Events"): the in-stock facet
    "product.created": "product.exchange",
    "product.updated": "product.exchange",
    "product.deleted": "product.exchange",
}


def seed_user_id(email: str) -> uuid.UUID:
    """The fixed id of a seed account (admin@shop.local, seller@shop.local, user@shop.local): the seeds
    of svc_auth, svc_user and svc_product refer to one another by it, asking no service anything."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-seed-user:{email}")


def demo_product_id(number: int) -> uuid.UUID:
    """The fixed id of demo product `number` (1-based) of the demo catalog."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-demo-product:{number}")
