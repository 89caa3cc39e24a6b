"""Processes killed mid-checkout (SIGKILL, as the OOM killer does): each comes back by itself, the rest of
the stack serves on, buyers retrying with their Idempotency-Key get one order each, and no unit stays
held without an order."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
import uuid

import psutil

from tests.faults.shop import Shop, buyer
from tests.stack import Stack
from tests.support import eventually

BUYERS = 60


async def test_killing_order_and_inventory_mid_checkout_conserves_stock_and_both_come_back(
    shop: Shop, stack: Stack
) -> None:
    units = 1_000
    product = await shop.product(units=units)
    buyers = [buyer(shop.env) for _ in range(BUYERS)]
    await asyncio.gather(*(shop.fill(who, product) for who in buyers))
    answered: collections.Counter[int] = collections.Counter()
    killed = asyncio.Event()
    moments: dict[str, float] = {}
    order_process = stack.process("order")
    [inventory_worker, *_] = stack.process("inventory").children()

    async def shopper(who: dict[str, str]) -> str:
        """Checks out as a client would: a 502 or 503 is retried with the same Idempotency-Key."""
        key = str(uuid.uuid4())
        for _ in range(100):
            sent = time.monotonic()
            # Never a connection dropped without an answer (httpx.TransportError fails the test): the
            # edge answers for a service that is gone.
            answer = await shop.checkout(who, key=key)
            answered[answer.status_code] += 1
            if sum(answered.values()) == 10:
                # The whole svc_order (granian's parent, then its worker: killed the other way round, the
                # parent could respawn the worker first and leave the new one orphaned, serving on) and
                # one worker of svc_inventory.
                workers = order_process.children()
                for process in (order_process, *workers, inventory_worker):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.send_signal(signal.SIGKILL)
                killed.set()
                moments["killed"] = time.monotonic()
            if answer.status_code == 201:
                if sent > moments.get("killed", sent + 1):  # asked after the kill
                    moments.setdefault("served again", time.monotonic())
                order_id: str = answer.json()["orderId"]
                return order_id
            assert answer.status_code in (502, 503), answer.text
            await asyncio.sleep(0.2)
        raise AssertionError("never placed")

    began = time.monotonic()
    placed = await asyncio.gather(*(shopper(who) for who in buyers))
    assert killed.is_set()
    assert len(set(placed)) == BUYERS

    async def order_started_again() -> bool:
        """By the supervisor: a new process, not the one killed (nor a zombie of it)."""
        with contextlib.suppress(LookupError):
            return stack.process("order").pid != order_process.pid
        return False

    await eventually(order_started_again, within=30)
    for name in ("order", "inventory"):
        stack.wait_ready(name, within=30)

    async def orders_hold_what_is_reserved() -> tuple[int, int] | None:
        ordered = await shop.rows(
            "order",
            "SELECT coalesce(sum(i.quantity), 0) AS units"
            " FROM order_items i JOIN orders o ON o.id = i.order_id"
            " WHERE i.product_id = $1 AND o.status = 'PENDING'",
            uuid.UUID(product),
        )
        level = await shop.stock(product)
        held = (ordered[0]["units"], level["reserved"])
        # A checkout that died mid-way has been compensated by svc_order's recovery job by then.
        pending = await shop.rows("order", "SELECT 1 FROM checkout_intents WHERE state = 'open'")
        return held if held[0] == held[1] and level["onHand"] == units and not pending else None

    ordered, reserved = await eventually(orders_hold_what_is_reserved, within=30, interval=0.2)
    settled = time.monotonic() - began
    print(
        f"\nsvc_order and an svc_inventory worker SIGKILLed mid-checkout of {BUYERS} buyers: answers"
        f" {dict(answered)}; checkouts served again {moments['served again'] - moments['killed']:.1f} s after"
        f" the kill; {reserved} units"
        f" reserved = {ordered} ordered, {settled:.1f} s after the sale began"
    )
    assert ordered == BUYERS  # every buyer got exactly one order, however often it retried
    compensated = await shop.rows("order", "SELECT 1 FROM checkout_intents WHERE state = 'compensated'")
    print(f"checkouts that died with the process and were compensated: {len(compensated)}")
    # The rest of the stack went on serving.
    assert (await shop.edge.get("/api/products", params={"pageSize": 1})).status_code == 200
