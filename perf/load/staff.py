"""What the shop's staff do, lightly: the seller edits prices and restocks its products, the admin
reads the low-stock list and the cache statistics.

The edits land on the hot products the browsers and buyers use, so each one invalidates cached details
and lists under load (the next read of that product and of the lists is a miss) and the restocks keep
the hot set from selling out during long runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from perf.load.browse import Catalog
from perf.load.timed import Visit

RESTOCKED_TO = 500


@dataclass(frozen=True)
class Staff:
    seller: dict[str, str]
    admin: dict[str, str]
    catalog: Catalog


def edit_price(visit: Visit, staff: Staff, rng: random.Random) -> None:
    body = {"price": rng.randrange(100_000, 5_000_000, 1_000)}
    url = f"/api/products/{staff.catalog.product(rng)}"
    visit.request("PATCH", url, name="PATCH /api/products/{id}", headers=staff.seller, json=body)


def restock(visit: Visit, staff: Staff, rng: random.Random) -> None:
    body = {"quantity": RESTOCKED_TO, "lowStockThreshold": 10}
    url = f"/api/inventory/{staff.catalog.product(rng)}"
    visit.request("PUT", url, name="PUT /api/inventory/{id}", headers=staff.seller, json=body)


def low_stock(visit: Visit, staff: Staff, rng: random.Random) -> None:
    visit.request("GET", "/api/inventory/low-stock", name="GET /api/inventory/low-stock", headers=staff.admin)


def cache_stats(visit: Visit, staff: Staff, rng: random.Random) -> None:
    visit.request("GET", "/api/admin/cache/stats", name="GET /api/admin/cache/stats", headers=staff.admin)


Action = Callable[[Visit, Staff, random.Random], None]
ACTIONS: dict[Action, int] = {edit_price: 3, restock: 3, low_stock: 1, cache_stats: 1}


def act(visit: Visit, staff: Staff, rng: random.Random) -> None:
    """One staff action drawn from `ACTIONS`."""
    [chosen] = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))
    chosen(visit, staff, rng)
