"""Events svc_notify consumes, declaring only the fields it reads, and their handlers. It publishes none.

A handler never sends: it queues the message's rows (svc_notify.messages) in its own transaction, on
the channels the user wants, and the dispatcher sends them.

- `user.registered`: the verification mail.
- `user.registered`, `user.verified`, `user.profile.updated`: who to write to (`recipients`), as the
  order and payment events carry only a user id; `user.profile.updated` also brings the phone number.
- `user.preferences.updated`: the channels a user wants per kind of message, and their language.
- `product.created`, `product.updated`: product names, for the messages below.
- `inventory.low-stock`: a message to the product's seller, once per crossing of its threshold.
- `order.confirmed`, `order.cancelled`, `payment.refunded`: one message per outcome (and channel) the
  customer cares about. `payment.success` and `payment.failed` are not told on their own: each is
  followed by `order.confirmed` or `order.cancelled` (reason `payment_failed`), whose message says it,
  so a customer hears once per outcome rather than twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

import asyncpg
import msgspec

from kit.app import Deps
from kit.bus import Event, Handler
from svc_notify import store
from svc_notify.context import CONTEXT
from svc_notify.messages import Message, enqueue
from svc_notify.preferences import Preferences

log = logging.getLogger(__name__)

# What a cancellation's `reason` means to the customer ("your order was cancelled: ...").
CANCEL_REASONS = {
    "cancelled_by_customer": "you cancelled it",
    "cancelled_by_admin": "our team cancelled it",
    "payment_timeout": "it was not paid within the payment window",
    "payment_failed": "the payment did not go through",
}
UNKNOWN_REASON = "it could not be completed"


class UserRegistered(Event):
    """From svc_auth: a new account, or a resend, whose verification mail we send."""

    routing_key = "user.registered"
    user_id: uuid.UUID
    email: str
    full_name: str
    verification_token: str
    expires_at: datetime


class UserVerified(Event):
    routing_key = "user.verified"
    user_id: uuid.UUID
    email: str
    full_name: str


class UserProfileUpdated(Event):
    """From svc_user: `fullName` and `phone` carry the new values of those among `updatedFields`."""

    routing_key = "user.profile.updated"
    user_id: uuid.UUID
    updated_fields: list[str] = []
    full_name: str | None = None
    phone: str | None = None


class UserPreferencesUpdated(Event):
    routing_key = "user.preferences.updated"
    user_id: uuid.UUID
    preferences: Preferences


class OrderConfirmed(Event):
    routing_key = "order.confirmed"
    order_id: uuid.UUID
    user_id: uuid.UUID
    order_number: str
    total_amount: float


class OrderCancelled(Event):
    routing_key = "order.cancelled"
    order_id: uuid.UUID
    user_id: uuid.UUID
    reason: str
    order_number: str
    total_amount: float


class ProductCreated(Event):
    routing_key = "product.created"
    product_id: uuid.UUID
    name: str


class ProductUpdated(ProductCreated):
    routing_key = "product.updated"


class LowStock(Event):
    routing_key = "inventory.low-stock"
    product_id: uuid.UUID
    current_stock: int
    threshold: int
    seller_id: uuid.UUID | None = None


class PaymentRefunded(Event):
    routing_key = "payment.refunded"
    order_id: uuid.UUID
    user_id: uuid.UUID
    order_number: str
    amount: float


def money(amount: float) -> str:
    """An amount in VND as a customer reads it: `1,250,000 VND`, with cents only when there are some."""
    return f"{amount:,.0f} VND" if amount == int(amount) else f"{amount:,.2f} VND"


async def _remember(conn: asyncpg.Connection, event: UserRegistered | UserVerified) -> None:
    await conn.execute(store.UPSERT_RECIPIENT, event.user_id, event.email, event.full_name, event.occurred_at)


async def on_user_registered(conn: asyncpg.Connection, event: UserRegistered, deps: Deps) -> None:
    await _remember(conn, event)
    public_url = deps.settings.public_url.rstrip("/")

    def verification_link(token: str) -> str:
        return f"{public_url}/verify-email?{urlencode({'token': token, 'email': event.email})}"

    message = Message(
        event_id=event.event_id,
        user_id=event.user_id,
        template="email-verification",
        email=event.email,
        values={
            "fullName": event.full_name,
            "email": event.email,
            "link": verification_link(event.verification_token),
            "expiresAt": event.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        redacted={"link": verification_link("REDACTED")},
    )
    await enqueue(conn, message, CONTEXT.of(deps).config.default_locale)


async def on_user_verified(conn: asyncpg.Connection, event: UserVerified) -> None:
    await _remember(conn, event)


async def on_user_profile_updated(conn: asyncpg.Connection, event: UserProfileUpdated) -> None:
    if event.full_name is not None:
        await conn.execute(store.RENAME_RECIPIENT, event.user_id, event.full_name, event.occurred_at)
    if "phone" in event.updated_fields:
        await conn.execute(store.SET_PHONE, event.user_id, event.phone, event.occurred_at)


async def on_user_preferences_updated(conn: asyncpg.Connection, event: UserPreferencesUpdated) -> None:
    document = msgspec.json.encode(event.preferences).decode()
    await conn.execute(store.SET_PREFERENCES, event.user_id, document, event.occurred_at)


async def _notify_user(
    conn: asyncpg.Connection,
    deps: Deps,
    event: Event,
    user_id: uuid.UUID,
    page: str,
    template: str,
    values: Mapping[str, str],
) -> None:
    """Queue `template` for `user_id`, given its values beyond their name and the link to `page`."""
    recipient = await conn.fetchrow(store.RECIPIENT, user_id)
    if recipient is None:
        # Every account announces itself (registered, verified) long before it can order or sell; a
        # user id we never heard of has no name or address, and waiting would not bring them.
        log.warning("unknown user %s: %s not sent", user_id, template)
        return
    link = f"{deps.settings.public_url.rstrip('/')}/{page}"
    message = Message(
        event_id=event.event_id,
        user_id=user_id,
        template=template,
        values={"fullName": recipient["full_name"], "link": link, **values},
    )
    await enqueue(conn, message, CONTEXT.of(deps).config.default_locale)


async def on_order_confirmed(conn: asyncpg.Connection, event: OrderConfirmed, deps: Deps) -> None:
    values = {"orderNumber": event.order_number, "totalAmount": money(event.total_amount)}
    await _notify_user(
        conn, deps, event, event.user_id, f"orders/{event.order_id}", "order-confirmed", values
    )


async def on_order_cancelled(conn: asyncpg.Connection, event: OrderCancelled, deps: Deps) -> None:
    values = {
        "orderNumber": event.order_number,
        "totalAmount": money(event.total_amount),
        "reason": CANCEL_REASONS.get(event.reason, UNKNOWN_REASON),
    }
    await _notify_user(
        conn, deps, event, event.user_id, f"orders/{event.order_id}", "order-cancelled", values
    )


async def on_payment_refunded(conn: asyncpg.Connection, event: PaymentRefunded, deps: Deps) -> None:
    values = {"orderNumber": event.order_number, "amount": money(event.amount)}
    await _notify_user(
        conn, deps, event, event.user_id, f"orders/{event.order_id}", "payment-refunded", values
    )


async def on_product_named(conn: asyncpg.Connection, event: ProductCreated) -> None:
    await conn.execute(store.UPSERT_PRODUCT, event.product_id, event.name, event.occurred_at)


async def on_low_stock(conn: asyncpg.Connection, event: LowStock, deps: Deps) -> None:
    if event.seller_id is None:
        return  # a product svc_inventory knows no seller of: nobody to tell
    name = await conn.fetchval(store.PRODUCT_NAME, event.product_id) or "One of your products"
    values = {"productName": name, "available": str(event.current_stock), "threshold": str(event.threshold)}
    await _notify_user(
        conn, deps, event, event.seller_id, f"products/{event.product_id}", "low-stock", values
    )


handlers: dict[str, Handler] = {
    UserRegistered.routing_key: on_user_registered,
    UserVerified.routing_key: on_user_verified,
    UserProfileUpdated.routing_key: on_user_profile_updated,
    UserPreferencesUpdated.routing_key: on_user_preferences_updated,
    OrderConfirmed.routing_key: on_order_confirmed,
    OrderCancelled.routing_key: on_order_cancelled,
    PaymentRefunded.routing_key: on_payment_refunded,
    ProductCreated.routing_key: on_product_named,
    ProductUpdated.routing_key: on_product_named,
    LowStock.routing_key: on_low_stock,
}
