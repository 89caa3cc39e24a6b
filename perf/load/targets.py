"""Which latency target each request name answers to: the design's (architecture.md, "Response Time
Targets") and our own tighter ones, both as p99 in milliseconds.

The design's table gives one figure per kind of operation; we hold it at the 99th percentile, the
strictest reading. Ours are what the stack does on two idle cores with room to spare (perf/README.md):
a miss of ours is a warning in the report, a miss of the design's fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    kind: str
    design_ms: float | None
    ours_ms: float


DETAIL = Target("product detail", 50.0, 25.0)
LIST = Target("product list", 100.0, 40.0)
SEARCH = Target("search", 200.0, 100.0)
CART = Target("cart", 100.0, 40.0)
CHECKOUT = Target("checkout", 500.0, 200.0)
OTHER = Target("other", None, 200.0)

KINDS = (DETAIL, LIST, SEARCH, CART, CHECKOUT, OTHER)

_BY_NAME = {
    "GET /api/products/{id}": DETAIL,
    "GET /api/products (list)": LIST,
    "GET /api/products?fields": LIST,
    "GET /api/products?search": SEARCH,
    "GET /api/products?search (no match)": SEARCH,
    "GET /api/cart": CART,
    "POST /api/cart/items": CART,
    "PUT /api/cart/items/{id}": CART,
    "DELETE /api/cart/items/{id}": CART,
    "POST /api/orders/checkout": CHECKOUT,
    "POST /api/orders/checkout (replay)": CHECKOUT,
}


def target_of(name: str) -> Target:
    """The target of a request name as the scenarios label them; anything unlisted is `OTHER`."""
    return _BY_NAME.get(name, OTHER)
