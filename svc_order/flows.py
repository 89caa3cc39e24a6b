"""`POST /api/orders/checkout`: the checkout saga (architecture flow 2), orchestrated here.

The recipe, every step essential (a failure ends the checkout and undoes what came before):

    1. lock and load the cart                              undo: -  (a read)
    2. price it (name, price, image): the projection       undo: -  (a read)
       of the catalog, read with the cart (projection.py)
    3. record the checkout's intent, committed on its own  undo: mark it compensated once undone
       (svc_order/intents.py): from here on, a crash is undone by the recovery job
    4. at the same time, each with a deadline:
       a. ApplyDiscount: validate the code (or the best    undo: `checkout.aborted` through the outbox:
          automatic discount) and hold one usage; not         svc_discount frees a usage only that way
          asked without a code while svc_discount says
          (in Redis) no automatic discount exists
       b. ReserveStock: every line, all or nothing         undo: ReleaseStock now (best effort, its own
                                                                 deadline), `checkout.aborted` if that fails
    5. create the order (PENDING), its items, `order.created`, clear the ordered cart lines and close the
       intent, all in the transaction that holds the cart's lock and the Idempotency-Key claim
                                                           undo: - (commits or not; refused if the
                                                                 recovery job compensated the intent)

ApplyDiscount validates and holds atomically, so a separate ValidateDiscount first would only cost a
second round trip (and could disagree with it a moment later). An undo is registered as soon as a call
may have held something: a call that timed out or failed may still have happened on the other side.

Failures answer per the contract: a line out of stock or no longer sold, an empty cart, a refused
discount code -> 422 naming what; the catalog, inventory or discounts unreachable or past the deadline
-> 503. Either way nothing stays held: the stock now (ReleaseStock), the discount usage within moments
(the outbox survives a crash or a broker outage); when svc_inventory cannot be told, `checkout.aborted`
tells it. When order_db cannot record the undo, or the process dies mid-checkout, the open intent is
undone by the recovery job seconds later (`intents.recover`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import grpc
from prometheus_client import Counter

from kit.app import Deps
from kit.bus import outbox_arrays
from kit.errors import BusinessRuleViolation, FieldError, ServiceUnavailable
from kit.http import encode
from kit.identity import Identity
from protos import discount_pb2, inventory_pb2
from svc_order import cart, downstream, idempotency, intents, projection, store
from svc_order.cart import PricedLine
from svc_order.downstream import Downstream, Product
from svc_order.events import OrderCreated, SoldLine, StockLine
from svc_order.idempotency import Answer
from svc_order.intents import Intent, Journal
from svc_order.schemas import MAX_CART_LINES, CheckoutRequest, Placed
from svc_order.store import NO_VARIANT

log = logging.getLogger(__name__)
outcomes = Counter("shop_checkouts_total", "Checkouts by outcome", ["outcome"])


@dataclass(frozen=True, slots=True)
class Discount:
    amount: Decimal
    code: str | None


NO_DISCOUNT = Discount(Decimal(0), None)


@dataclass(slots=True)
class Saga:
    """One checkout: what it has done that a failure must undo."""

    downstream: Downstream
    journal: Journal
    user_id: uuid.UUID
    order_id: uuid.UUID = field(default_factory=uuid.uuid4)
    lines: list[PricedLine] = field(default_factory=list)
    intent: Intent | None = None  # being recorded: from then on, a failure has something to undo
    stock_held: bool = False  # reserved, or the reservation's outcome is unknown
    discount_held: bool = False  # a usage held, or the outcome unknown

    # -- 2. price ---------------------------------------------------------------------------------------

    def price(self, rows: list[asyncpg.Record], products: Mapping[uuid.UUID, Product | None]) -> None:
        gone: list[FieldError] = []
        for row in rows:
            line = cart.priced(products[row["product_id"]], row["variant_id"], row["quantity"])
            if line is None:
                gone.append(FieldError(str(row["product_id"]), "no longer for sale"))
            else:
                self.lines.append(line)
        if gone:
            raise BusinessRuleViolation("Some products in the cart are no longer for sale", gone)

    # -- 3. the intent ---------------------------------------------------------------------------------

    async def record_intent(self, code: str | None) -> None:
        """Commit what is about to be held, so that a crash from here on is undone (intents.py)."""
        lines = [
            StockLine(product_id=line.product.id, variant_id=line.variant_id, quantity=line.quantity)
            for line in self.lines
        ]
        # Set first: an INSERT whose answer was lost may still have committed, and must be closed too.
        self.intent = Intent(self.order_id, self.user_id, lines, code)
        await self.journal.record(self.intent)

    # -- 4. discount and stock ------------------------------------------------------------------------

    async def hold(self, subtotal: Decimal, code: str | None) -> Discount:
        """Apply the discount and reserve the stock at the same time; both must succeed. Without a code,
        when svc_discount says no automatic discount exists, there is nothing to apply: one call less."""
        if not await self.downstream.discount_may_apply(code):
            await self.reserve_stock()
            return NO_DISCOUNT
        discount, stock = await asyncio.gather(
            self.apply_discount(subtotal, code), self.reserve_stock(), return_exceptions=True
        )
        # A stock failure first: when both fail, "out of stock" is the more useful answer.
        for outcome in (stock, discount):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(discount, Discount)
        return discount

    async def apply_discount(self, subtotal: Decimal, code: str | None) -> Discount:
        request = discount_pb2.ApplyDiscountRequest(
            order_id=str(self.order_id),
            code=code or "",
            user_id=str(self.user_id),
            subtotal=f"{subtotal:f}",
            lines=[
                discount_pb2.OrderLine(
                    product_id=str(line.product.id),
                    category_id=str(line.product.category_id),
                    quantity=line.quantity,
                    unit_price=f"{line.unit_price:f}",
                )
                for line in self.lines
            ],
        )
        self.discount_held = True
        try:
            answer = await self.downstream.discount.ApplyDiscount(request, timeout=self.deadline)
        except grpc.aio.AioRpcError as exc:
            raise self._unavailable("Discounts", exc) from None
        self.discount_held = answer.applied
        if answer.applied:
            return Discount(Decimal(answer.discount_amount), answer.code)
        if code:
            raise BusinessRuleViolation(
                f"The discount code {code} cannot be used ({answer.reason})",
                [FieldError("discountCode", answer.reason or "invalid")],
            )
        return NO_DISCOUNT  # no automatic discount for this order: not an error

    async def reserve_stock(self) -> None:
        config = self.downstream.config
        request = inventory_pb2.ReserveStockRequest(
            order_id=str(self.order_id),
            lines=[
                inventory_pb2.StockLine(
                    product_id=str(line.product.id),
                    variant_id=str(line.variant_id or ""),
                    quantity=line.quantity,
                )
                for line in self.lines
            ],
            hold_seconds=config.payment_window + config.hold_grace,
        )
        self.stock_held = True
        try:
            answer = await self.downstream.inventory.ReserveStock(request, timeout=self.deadline)
        except grpc.aio.AioRpcError as exc:
            raise self._unavailable("Inventory", exc) from None
        self.stock_held = answer.reserved
        if not answer.reserved:
            raise self._out_of_stock(answer)

    def _out_of_stock(self, answer: inventory_pb2.ReserveStockResponse) -> BusinessRuleViolation:
        names = {(str(line.product.id), str(line.variant_id or "")): line for line in self.lines}
        details = []
        for short in answer.shortages:
            line = names.get((short.product_id, short.variant_id))
            name = line.product.name if line else short.product_id
            if line and line.variant:
                name = f"{name} ({line.variant.name})"
            left = f"{short.available} left" if short.known else "not stocked"
            details.append(FieldError(short.product_id, f"{name}: {short.requested} wanted, {left}"))
        listed = ", ".join(d.message.split(":", 1)[0] for d in details) or "some products"
        return BusinessRuleViolation(f"Not enough stock for {listed}", details)

    # -- undo ------------------------------------------------------------------------------------------

    async def compensate(self, conn: asyncpg.Connection, why: str) -> None:
        """Give back what this checkout holds and close its intent; never raises."""
        if self.intent is not None:
            await intents.compensate(
                conn,
                self.downstream,
                self.intent,
                why,
                stock_held=self.stock_held,
                discount_held=self.discount_held,
            )

    @property
    def deadline(self) -> float:
        return self.downstream.config.deadline

    def _unavailable(self, what: str, exc: grpc.aio.AioRpcError) -> ServiceUnavailable:
        code = exc.code().name
        log.warning(
            "checkout dependency failed",
            extra={"dependency": what, "code": code, "orderId": str(self.order_id)},
        )
        return ServiceUnavailable(f"{what} unavailable ({code}), please retry")


async def checkout(d: Deps, who: Identity, body: CheckoutRequest, key: str | None) -> Answer:
    """Run the saga for `who`'s cart, under `key` (an Idempotency-Key) when given."""
    saga = Saga(downstream.CLIENTS.of(d), intents.JOURNAL.of(d), who.user_id)
    async with d.db.acquire() as conn:
        try:
            async with conn.transaction():
                if key is not None:
                    replay = await idempotency.claim(conn, who.user_id, key, idempotency.fingerprint(body))
                    if replay is not None:
                        outcomes.labels("replayed").inc()
                        return replay
                try:
                    answer = await _place_order(conn, saga, d, body)
                except BusinessRuleViolation as refused:
                    answer = Answer(refused.status, encode(refused.body()))
                if key is not None:
                    await idempotency.remember(conn, who.user_id, key, answer)
        except BaseException:
            outcomes.labels("failed").inc()
            await saga.compensate(conn, "checkout failed")
            raise
        if answer.status != 201:
            await saga.compensate(conn, "checkout refused")
    outcomes.labels("placed" if answer.status == 201 else "refused").inc()
    return answer


async def _place_order(conn: asyncpg.Connection, saga: Saga, d: Deps, body: CheckoutRequest) -> Answer:
    config = saga.downstream.config
    # 1. the cart, locked: a second checkout of it waits for this one, then finds it emptied
    rows = await conn.fetch(store.CART_FOR_CHECKOUT, saga.user_id)
    if not rows:
        raise BusinessRuleViolation("The cart is empty")
    if len(rows) > MAX_CART_LINES:
        raise BusinessRuleViolation(f"A cart of more than {MAX_CART_LINES} lines cannot be checked out")
    # 2. current prices: the projection's, joined to the cart (the catalog's for a product it lacks)
    ids = (row["product_id"] for row in rows)
    saga.price(rows, await projection.products(d, ids, projection.known_in(rows), conn))
    subtotal = sum((line.total for line in saga.lines), Decimal(0))
    # 3. the intent, durable before anything is held
    await saga.record_intent(body.discount_code)
    # 4. the discount usage and the stock, at the same time
    discount = await saga.hold(subtotal, body.discount_code)
    # 5. the order, and its event in the same statement
    discount_amount = min(discount.amount, subtotal)
    shipping = config.shipping_for(subtotal - discount_amount)
    total = subtotal - discount_amount + shipping
    lines = saga.lines
    order_number: str = rows[0]["order_number"]
    expires_at: datetime = rows[0]["began"] + timedelta(seconds=config.payment_window)
    created = OrderCreated(
        order_id=saga.order_id,
        order_number=order_number,
        user_id=saga.user_id,
        items=[
            SoldLine(
                product_id=line.product.id,
                variant_id=line.variant_id,
                quantity=line.quantity,
                product_name=line.product.name,
                unit_price=float(line.unit_price),
                seller_id=line.product.seller_id,
            )
            for line in lines
        ],
        subtotal=float(subtotal),
        discount_amount=float(discount_amount),
        shipping_fee=float(shipping),
        total_amount=float(total),
        payment_method=body.payment_method,
        discount_code=discount.code,
        expires_at=expires_at,
    )
    intent_closed = await conn.fetchval(
        store.CREATE_ORDER,
        saga.order_id,
        saga.user_id,
        body.payment_method,
        subtotal,
        discount_amount,
        shipping,
        total,
        sum(line.quantity for line in lines),
        discount.code,
        encode(body.shipping_address).decode(),
        order_number,
        expires_at,
        [line.product.id for line in lines],
        [line.variant_id for line in lines],
        [line.product.name for line in lines],
        [line.variant.name if line.variant else None for line in lines],
        [line.product.image for line in lines],
        [line.product.seller_id for line in lines],
        [line.unit_price for line in lines],
        [line.quantity for line in lines],
        [line.variant_id or NO_VARIANT for line in lines],
        *outbox_arrays([created]),
    )
    if not intent_closed:
        # The recovery job took this checkout for a dead one and gave its holds back: no order then.
        raise ServiceUnavailable("The checkout took too long and was undone, please retry")
    placed = Placed(
        order_id=saga.order_id,
        order_number=order_number,
        status="PENDING",
        subtotal=float(subtotal),
        discount_amount=float(discount_amount),
        shipping_fee=float(shipping),
        total_amount=float(total),
        currency="VND",
        discount_code=discount.code,
        payment_method=body.payment_method,
        payment_url=payment_url(d, saga.order_id),
        expires_at=expires_at,
    )
    return Answer(201, encode(placed))


def payment_url(d: Deps, order_id: uuid.UUID) -> str:
    """Where the buyer pays: svc_payment redirects it to the gateway's page (through the edge)."""
    return f"{d.settings.public_url.rstrip('/')}/api/payments/pay/{order_id}"
