"""What a browser does: one page view per arrival, through the edge, as a guest.

Views are skewed the way shops are: most go to a hot set of products (the first `HOT` active demo
products get 80% of detail and review views), the rest spread over the whole catalog. Lists mix category and
brand filters, price ranges, every sort and the first few pages; searches mix word prefixes with words
that match nothing (a full scan of the index that finds no row, then the trigram fallback).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from perf.load.timed import Visit
from svc_product import demo

HOT = 200
SEARCH_WORDS = (
    "lapt", "phone", "shirt", "cafe", "lamp", "yoga", "tent", "novel", "rice", "sneak", "dress", "desk",
    "helm", "perf", "puzz", "knife", "tablet", "monit", "jack", "boot", "pan", "chair", "rug", "vase",
    "da lat", "hoi an", "premium lapt", "eco lamp", "classic", "smart", "aptop", "ttle",
)  # fmt: skip
NO_MATCH_WORDS = ("zyxwq", "qqqqzz", "xylophonez", "brontosaurus")
SORTS = ("price", "name", "createdAt", "rating")
FIELDS = ("id,name,price", "id,name,price,rating", "id,slug,image")


@dataclass
class Catalog:
    """What visitors pick from: the demo catalog's products for sale, the category and brand ids."""

    products: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)

    def product(self, rng: random.Random) -> str:
        """A product for sale: one of the hot set four times in five."""
        return rng.choice(self.products[:HOT] if rng.random() < 0.8 else self.products)


def demo_products() -> list[str]:
    """The ids of the demo catalog's active products, in its order (the seed makes 4% draft or
    inactive, which answer 404 to a guest): rebuilt from the seed's own generator, about a second."""
    status = demo.COLUMNS["products"].index("status")
    return [str(row[0]) for row in demo.build().products if row[status] == "active"]


def detail(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    visit.request("GET", f"/api/products/{catalog.product(rng)}", name="GET /api/products/{id}")


def product_list(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    query = [
        f"page={rng.randint(1, 5)}",
        f"sortBy={rng.choice(SORTS)}",
        f"sortOrder={rng.choice(('asc', 'desc'))}",
    ]
    if catalog.categories and rng.random() < 0.6:
        query.append(f"categoryId={rng.choice(catalog.categories)}")
    elif catalog.brands and rng.random() < 0.5:
        query.append(f"brandId={rng.choice(catalog.brands)}")
    if rng.random() < 0.3:
        low = rng.choice((0, 100_000, 500_000))
        query.append(f"minPrice={low}&maxPrice={low + rng.choice((1_000_000, 5_000_000))}")
    visit.request("GET", "/api/products?" + "&".join(query), name="GET /api/products (list)")


def trimmed_list(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    url = f"/api/products?page={rng.randint(1, 10)}&pageSize=40&fields={rng.choice(FIELDS)}"
    visit.request("GET", url, name="GET /api/products?fields")


def search(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    if rng.random() < 0.15:
        word, name = rng.choice(NO_MATCH_WORDS), "GET /api/products?search (no match)"
    else:
        word, name = rng.choice(SEARCH_WORDS), "GET /api/products?search"
    visit.request("GET", f"/api/products?search={word.replace(' ', '+')}&pageSize=20", name=name)


def category_tree(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    visit.request("GET", "/api/categories", name="GET /api/categories")


def reviews(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    url = f"/api/products/{catalog.product(rng)}/reviews"
    visit.request("GET", url, name="GET /api/products/{id}/reviews")


def brands(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    visit.request("GET", "/api/brands", name="GET /api/brands")


View = Callable[[Visit, Catalog, random.Random], None]
# The weighted table of page views (relative weights).
VIEWS: dict[View, int] = {
    detail: 40,
    product_list: 20,
    trimmed_list: 8,
    search: 14,
    reviews: 8,
    category_tree: 7,
    brands: 3,
}


def view(visit: Visit, catalog: Catalog, rng: random.Random) -> None:
    """One page view drawn from `VIEWS`."""
    [chosen] = rng.choices(list(VIEWS), weights=list(VIEWS.values()))
    chosen(visit, catalog, rng)
