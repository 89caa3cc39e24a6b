"""What a buyer does in one session: cart, checkout with an Idempotency-Key, pay at the sandbox, orders.

Each buyer is a pool account (perf/load/buyers.py) logged in before the run. A session fills the cart
with 1..3 products (hot ones mostly, as the browser sees them), changes a quantity, removes a line,
checks out (one session in twenty sends the checkout twice with the same key, as a client retry does,
and must get the same order back), waits for its payment to exist (svc_payment creates it from
`order.created`), pays at the gateway sandbox (one in ten fails, which cancels the order and releases
the stock), then reads the order and its order list. A session stops at a failed cart line or checkout,
as a buyer would.
"""

from __future__ import annotations

import random
import uuid

import gevent
from locust.contrib.fasthttp import ResponseContextManager

from perf.load.browse import Catalog
from perf.load.timed import Visit

ADDRESS = {
    "fullName": "Load Buyer",
    "phone": "+84900000002",
    "line1": "1 Load St",
    "city": "HCMC",
    "country": "VN",
}
METHODS = ("vnpay", "momo", "zalopay")
# MoMo takes at most 50,000,000 VND a payment (the sandbox refuses more, as MoMo does): a buyer with a
# bigger cart picks another method, as the shop's payment page would only offer those. The margin
# covers a price the staff scenario raises between the cart's answer and the checkout.
MOMO_MAX = 50_000_000
MOMO_MARGIN = 20_000_000
FAILED_PAYMENTS = 0.1
REPLAYED_CHECKOUTS = 0.05
PAYMENT_WAITS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)  # seconds between looks for the new order's payment


def session(visit: Visit, catalog: Catalog, token: str, sandbox: str, rng: random.Random) -> None:
    """One shopping session of the buyer holding `token`; `sandbox` is the payment sandbox's URL."""
    auth = {"Authorization": f"Bearer {token}"}
    visit.request("GET", "/api/cart", name="GET /api/cart", headers=auth)
    products = list(dict.fromkeys(catalog.product(rng) for _ in range(rng.randint(1, 3))))
    for product in products:
        body = {"productId": product, "quantity": 1}
        added = visit.request("POST", "/api/cart/items", name="POST /api/cart/items", headers=auth, json=body)
        if added.status_code != 200:
            # A buyer whose cart cannot be filled gives up (the failure is recorded once, not again as
            # a missing line and an empty cart at checkout).
            visit.request("DELETE", "/api/cart", name="DELETE /api/cart", headers=auth, expect=(200, 204))
            return
    cart = visit.request(
        "PUT", f"/api/cart/items/{products[0]}", name="PUT /api/cart/items/{id}", headers=auth,
        json={"quantity": 2},
    )  # fmt: skip
    if len(products) > 1:
        url = f"/api/cart/items/{products[-1]}"
        cart = visit.request("DELETE", url, name="DELETE /api/cart/items/{id}", headers=auth)
    checkout = {"shippingAddress": ADDRESS, "paymentMethod": rng.choice(_methods(cart))}
    once = {**auth, "Idempotency-Key": str(uuid.uuid4())}
    placed = visit.request(
        "POST", "/api/orders/checkout", name="POST /api/orders/checkout", headers=once, json=checkout,
        expect=(201,),
    )  # fmt: skip
    if placed.status_code != 201:
        visit.request("DELETE", "/api/cart", name="DELETE /api/cart", headers=auth, expect=(200, 204))
        return
    order = placed.json()
    if rng.random() < REPLAYED_CHECKOUTS:
        replay = visit.request(
            "POST", "/api/orders/checkout", name="POST /api/orders/checkout (replay)", headers=once,
            json=checkout, expect=(201,),
        )  # fmt: skip
        if replay.status_code == 201 and replay.json().get("orderId") != order["orderId"]:
            replay.failure("a replayed checkout made another order")
    _pay(visit, auth, order, sandbox, "failed" if rng.random() < FAILED_PAYMENTS else "success")
    visit.request("GET", f"/api/orders/{order['orderId']}", name="GET /api/orders/{id}", headers=auth)
    visit.request("GET", "/api/orders?pageSize=10", name="GET /api/orders", headers=auth)


def _methods(cart: ResponseContextManager) -> tuple[str, ...]:
    """The methods the shop would offer for this cart: MoMo only when its amount is surely within
    MoMo's limit (a line the catalog could not price just then leaves the subtotal short)."""
    answer = cart.json() if cart.status_code == 200 else {}
    priced = all(line.get("available") for line in answer.get("items", ()))
    if priced and 0 < answer.get("subtotal", 0) < MOMO_MAX - MOMO_MARGIN:
        return METHODS
    return tuple(m for m in METHODS if m != "momo")


def _pay(visit: Visit, auth: dict[str, str], order: dict[str, str], sandbox: str, outcome: str) -> None:
    url = f"/api/payments/orders/{order['orderId']}"
    for look, wait in enumerate(PAYMENT_WAITS):
        gevent.sleep(wait)
        # Not there yet is a 404 while order.created travels; only the last look must find it.
        last = look == len(PAYMENT_WAITS) - 1
        found = visit.request(
            "GET",
            url,
            name="GET /api/payments/orders/{id}",
            headers=auth,
            expect=(200,) if last else (200, 404),
        )
        if found.status_code == 200:
            break
    else:
        return
    pay = {"paymentUrl": order["paymentUrl"], "outcome": outcome}
    visit.request("POST", f"{sandbox}/sandbox/pay", name="POST sandbox /sandbox/pay", json=pay)
