"""One checkout is one trace (OpenTelemetry: edge.spans, kit.telemetry): the edge's span, svc_order's
request with its database statements, its gRPC calls to svc_inventory and svc_discount, the outbox's
publications and the consumers of svc_payment (the order) and svc_notify (the seller's low-stock
notice the checkout caused), all in the trace the client started, collected by the dev trace sink
(devsinks/traces.py)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.support import ADDRESS, POLL, stocked_product, token
from tests.support import eventually

pytestmark = pytest.mark.e2e
# (service, span kind) of every hop of a checkout.
HOPS = {
    ("shop-edge", "server"),
    ("shop-edge", "client"),
    ("shop-order", "server"),
    ("shop-order", "client"),
    ("shop-inventory", "server"),
    ("shop-discount", "server"),
    ("shop-order", "producer"),
    ("shop-inventory", "producer"),
    ("shop-payment", "consumer"),
    ("shop-notify", "consumer"),
}


async def test_one_checkout_is_one_trace_across_every_service_it_reaches(
    edge: httpx.AsyncClient, stack: dict[str, str]
) -> None:
    buyer = await token(edge, "user@shop.local", "User123!")
    seller = await token(edge, "seller@shop.local", "Seller123!")
    admin = await token(edge, "admin@shop.local", "Admin123!")
    product = await stocked_product(edge, seller, units=2, price=120_000)
    # A code, so svc_discount is asked (without one it is asked only while an automatic discount exists).
    code = f"TRACE{secrets.token_hex(4).upper()}"
    coupon = {"code": code, "name": "Trace", "kind": "PERCENTAGE", "value": 5}
    assert (await edge.post("/api/discounts", json=coupon, headers=admin)).status_code == 201
    # Buying one of two then leaves the seller at the threshold: svc_notify tells them, in this trace.
    stock = {"quantity": 2, "lowStockThreshold": 1}
    assert (await edge.put(f"/api/inventory/{product}", json=stock, headers=seller)).status_code == 200
    await edge.delete("/api/cart", headers=buyer)
    await edge.post("/api/cart/items", json={"productId": product, "quantity": 1}, headers=buyer)
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {**buyer, "traceparent": f"00-{trace_id}-{client_span}-01"}
    body = {"shippingAddress": ADDRESS, "paymentMethod": "vnpay", "discountCode": code}
    placed = await edge.post(
        "/api/orders/checkout", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert placed.status_code == 201, placed.text

    async with httpx.AsyncClient(base_url=stack["traces"], timeout=10) as sink:

        async def whole_trace() -> list[dict[str, Any]] | None:
            answer = await sink.get(f"/api/traces/{trace_id}")
            spans: list[dict[str, Any]] = answer.json() if answer.status_code == 200 else []
            return spans if {(s["service"], s["kind"]) for s in spans} >= HOPS else None

        spans = await eventually(whole_trace, within=20, interval=POLL)
        assert trace_id in {t["traceId"] for t in (await sink.get("/api/traces")).json()}
    by_id = {s["spanId"]: s for s in spans}
    [at_edge] = [s for s in spans if s["service"] == "shop-edge" and s["kind"] == "server"]
    [attempt] = [s for s in spans if s["service"] == "shop-edge" and s["kind"] == "client"]
    assert (
        at_edge["parentSpanId"] == client_span and at_edge["attributes"]["http.response.status_code"] == 201
    )
    checkout = next(s for s in spans if s["name"] == "POST /api/orders/checkout")
    assert checkout["parentSpanId"] == attempt["spanId"] and attempt["parentSpanId"] == at_edge["spanId"]
    # Each hop descends from the edge's span, which continues the client's trace.
    for span in (s for s in spans if (s["service"], s["kind"]) in HOPS):
        ancestor = span
        while ancestor["parentSpanId"] in by_id:
            ancestor = by_id[ancestor["parentSpanId"]]
        assert ancestor["spanId"] == at_edge["spanId"], span
    reserve = next(s for s in spans if s["service"] == "shop-inventory" and s["kind"] == "server")
    assert by_id[reserve["parentSpanId"]]["service"] == "shop-order"
    statements = [s for s in spans if s["attributes"].get("db.system") == "postgresql"]
    assert any(s["parentSpanId"] == checkout["spanId"] for s in statements), statements
    notice = next(s for s in spans if s["service"] == "shop-notify" and s["kind"] == "consumer")
    assert notice["name"] == "notify.inventory.low-stock process"
    assert not any(s["failed"] for s in spans)
