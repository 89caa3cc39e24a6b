"""The demo catalog, generated: a 3-level category tree, 60 brands and 10,000 products with variants,
attributes, images and reviews. Deterministic (a fixed random seed and fixed ids), so every machine
builds the same shop, and svc_inventory can stock demo product n by `shop.map.demo_product_id(n)`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from shop.map import demo_product_id, seed_user_id
from svc_product.store import slugify, variant_id

PRODUCTS = 10_000
SELLER = seed_user_id("seller@shop.local")
# Timestamps count back from a fixed moment, so two runs produce the same rows.
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

# top category -> sub-category -> (leaf category, the noun its products are named with)
TREE: dict[str, dict[str, list[tuple[str, str]]]] = {
    "Electronics": {
        "Computers": [("Laptops", "Laptop"), ("Monitors", "Monitor"), ("Keyboards", "Keyboard")],
        "Phones & Tablets": [("Smartphones", "Smartphone"), ("Tablets", "Tablet"), ("Phone Cases", "Case")],
        "Audio": [("Headphones", "Headphones"), ("Speakers", "Speaker"), ("Microphones", "Microphone")],
    },
    "Fashion": {
        "Men's Clothing": [("Men's Shirts", "Shirt"), ("Men's Jeans", "Jeans"), ("Men's Jackets", "Jacket")],
        "Women's Clothing": [("Dresses", "Dress"), ("Blouses", "Blouse"), ("Skirts", "Skirt")],
        "Shoes": [("Sneakers", "Sneakers"), ("Sandals", "Sandals"), ("Boots", "Boots")],
    },
    "Home & Kitchen": {
        "Cookware": [("Frying Pans", "Frying Pan"), ("Pots", "Pot"), ("Knives", "Knife")],
        "Furniture": [("Chairs", "Chair"), ("Desks", "Desk"), ("Shelves", "Shelf")],
        "Home Decor": [("Lamps", "Lamp"), ("Rugs", "Rug"), ("Vases", "Vase")],
    },
    "Sports & Outdoors": {
        "Fitness": [("Yoga Mats", "Yoga Mat"), ("Dumbbells", "Dumbbell"), ("Resistance Bands", "Band")],
        "Camping": [("Tents", "Tent"), ("Sleeping Bags", "Sleeping Bag"), ("Backpacks", "Backpack")],
        "Cycling": [("Bicycles", "Bicycle"), ("Helmets", "Helmet"), ("Bike Lights", "Bike Light")],
    },
    "Beauty & Health": {
        "Skincare": [("Moisturizers", "Moisturizer"), ("Cleansers", "Cleanser"), ("Sunscreens", "Sunscreen")],
        "Hair Care": [("Shampoos", "Shampoo"), ("Hair Dryers", "Hair Dryer"), ("Combs", "Comb")],
        "Fragrances": [("Perfumes", "Perfume"), ("Body Mists", "Body Mist"), ("Candles", "Scented Candle")],
    },
    "Books & Stationery": {
        "Books": [("Novels", "Novel"), ("Cookbooks", "Cookbook"), ("Comics", "Comic")],
        "Writing": [("Notebooks", "Notebook"), ("Pens", "Pen"), ("Planners", "Planner")],
        "Office": [("Desk Organizers", "Organizer"), ("Staplers", "Stapler"), ("Calculators", "Calculator")],
    },
    "Toys & Games": {
        "Board Games": [
            ("Strategy Games", "Strategy Game"),
            ("Party Games", "Party Game"),
            ("Puzzles", "Puzzle"),
        ],
        "Building Toys": [
            ("Blocks", "Block Set"),
            ("Model Kits", "Model Kit"),
            ("Magnetic Tiles", "Tile Set"),
        ],
        "Outdoor Play": [("Kites", "Kite"), ("Water Guns", "Water Gun"), ("Scooters", "Scooter")],
    },
    "Grocery": {
        "Coffee & Tea": [
            ("Coffee Beans", "Cà Phê"),
            ("Green Tea", "Trà Xanh"),
            ("Coffee Makers", "Phin Filter"),
        ],
        "Snacks": [("Cookies", "Cookies"), ("Dried Fruit", "Dried Mango"), ("Nuts", "Cashews")],
        "Pantry": [("Rice", "Jasmine Rice"), ("Fish Sauce", "Nước Mắm"), ("Noodles", "Phở Noodles")],
    },
}
# Price range (VND) of each top category's products.
PRICES = {
    "Electronics": (300_000, 45_000_000),
    "Fashion": (90_000, 2_500_000),
    "Home & Kitchen": (60_000, 8_000_000),
    "Sports & Outdoors": (80_000, 15_000_000),
    "Beauty & Health": (50_000, 3_000_000),
    "Books & Stationery": (15_000, 900_000),
    "Toys & Games": (40_000, 2_000_000),
    "Grocery": (20_000, 600_000),
}
BRANDS = (
    "Acme", "Aurora", "Bamboo & Co", "Basalt", "Bến Thành", "Brightline", "Café Sài Gòn", "Cedar",
    "Cobalt", "Crème Maison", "Đà Lạt Farms", "Delta", "Ember", "Evergreen", "Fjord", "Halcyon",
    "Hà Nội Craft", "Helix", "Hội An Atelier", "Indigo", "Juniper", "Kestrel", "Lotus", "Lumen",
    "Mekong", "Meridian", "Monsoon", "Nimbus", "Northwind", "Oakridge", "Onyx", "Orbit", "Pebble",
    "Phoenix", "Pinecone", "Quartz", "Redwood", "Riverstone", "Saffron", "Sapa Outdoor", "Sierra",
    "Solstice", "Sparrow", "Summit", "Tidal", "Topaz", "Tundra", "Umbra", "Vantage", "Velvet",
    "Verdant", "Vortex", "Willow", "Zenith", "Zephyr", "Halong Bay", "Huế Heritage", "Atlas",
    "Bloom", "Kite & Cloud",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Premium", "Compact", "Ultra", "Eco", "Deluxe", "Essential", "Pro", "Lite", "Smart",
    "Vintage", "Modern", "Rugged", "Slim", "Everyday", "Signature", "Travel", "Studio", "Élégant",
    "Original",
)  # fmt: skip
EDITIONS = (
    "",
    "",
    "",
    "",
    "Sài Gòn Edition",
    "Hà Nội Edition",
    "Đà Lạt Edition",
    "Café Series",
    "Crème Line",
)
COLOURS = ("Black", "White", "Red", "Blue", "Green", "Beige", "Grey", "Navy", "Pink", "Olive")
MATERIALS = (
    "Cotton",
    "Aluminium",
    "Bamboo",
    "Stainless Steel",
    "Leather",
    "Recycled Plastic",
    "Oak",
    "Linen",
)
ORIGINS = ("Việt Nam", "Japan", "Korea", "Germany", "Thailand", "Italy", "USA", "Taiwan")
FIRST_NAMES = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Khoa", "Lan",
               "Linh", "Minh", "Nam", "Ngọc", "Phúc", "Quân", "Thảo", "Trang", "Tuấn", "Vy")  # fmt: skip
LAST_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô")
COMMENTS = (
    "Exactly as described, fast delivery.",
    "Good value for the price.",
    "Quality could be better, but it does the job.",
    "Rất tốt, sẽ mua lại!",
    "Arrived a bit late, the product itself is fine.",
    "My second one, still happy.",
    "Not what I expected.",
    "Great build quality.",
    "",
)
REVIEWERS = 60


def _id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-demo-{kind}:{key}")


def reviewer_id(number: int) -> uuid.UUID:
    return _id("reviewer", str(number))


@dataclass
class Catalog:
    """Rows ready for COPY, one list per table, in its column order (see `COLUMNS`)."""

    categories: list[tuple[object, ...]] = field(default_factory=list)
    brands: list[tuple[object, ...]] = field(default_factory=list)
    products: list[tuple[object, ...]] = field(default_factory=list)
    product_variants: list[tuple[object, ...]] = field(default_factory=list)
    product_attributes: list[tuple[object, ...]] = field(default_factory=list)
    product_images: list[tuple[object, ...]] = field(default_factory=list)
    reviews: list[tuple[object, ...]] = field(default_factory=list)
    authors: list[tuple[object, ...]] = field(default_factory=list)


COLUMNS = {
    "categories": ("id", "parent_id", "name", "slug", "description", "position", "created_at", "updated_at"),
    "brands": ("id", "name", "slug", "description", "logo_url", "created_at", "updated_at"),
    "products": (
        "id", "seller_id", "category_id", "brand_id", "name", "slug", "description", "price", "status",
        "rating", "rating_total", "review_count", "created_at", "updated_at", "in_stock",
    ),
    "product_variants": ("id", "product_id", "position", "sku", "name", "price", "attributes"),
    "product_attributes": ("product_id", "position", "name", "value"),
    "product_images": ("product_id", "position", "url", "alt_text"),
    "reviews": ("id", "product_id", "user_id", "rating", "comment", "created_at"),
    "authors": ("user_id", "name", "changed_at"),
}  # fmt: skip


@dataclass(frozen=True)
class Leaf:
    id: uuid.UUID
    top: str
    noun: str


def _categories(catalog: Catalog) -> list[Leaf]:
    leaves = []
    for top_position, (top, subs) in enumerate(TREE.items()):
        top_id = _id("category", slugify(top))
        catalog.categories.append((top_id, None, top, slugify(top), f"Everything in {top}.", top_position))
        for sub_position, (sub, leaf_names) in enumerate(subs.items()):
            sub_slug = slugify(sub)
            sub_id = _id("category", sub_slug)
            catalog.categories.append((sub_id, top_id, sub, sub_slug, f"{sub} in {top}.", sub_position))
            for leaf_position, (leaf, noun) in enumerate(leaf_names):
                leaf_slug = slugify(leaf)
                leaf_id = _id("category", leaf_slug)
                catalog.categories.append((leaf_id, sub_id, leaf, leaf_slug, f"{leaf}.", leaf_position))
                leaves.append(Leaf(leaf_id, top, noun))
    catalog.categories = [(*row, EPOCH, EPOCH) for row in catalog.categories]
    return leaves


def _variants(rng: random.Random, top: str, price: float) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, attributes, price) of a product's variants: sizes for clothes, storage for devices, colours."""
    colours = rng.sample(COLOURS, rng.randint(1, 3))
    if top == "Fashion":
        for colour in colours:
            for size in rng.sample(("S", "M", "L", "XL"), rng.randint(1, 2)):
                yield f"{colour} / {size}", {"colour": colour, "size": size}, price
    elif top == "Electronics":
        for colour in colours[:2]:
            for storage, extra in (("128 GB", 0.0), ("256 GB", 0.15)):
                yield (
                    f"{colour} / {storage}",
                    {"colour": colour, "storage": storage},
                    round(price * (1 + extra), -3),
                )
    else:
        for colour in colours:
            yield colour, {"colour": colour}, price


def build(products: int = PRODUCTS, seed: int = 42) -> Catalog:
    """The whole demo catalog; the same rows for the same arguments."""
    rng = random.Random(seed)
    catalog = Catalog()
    leaves = _categories(catalog)
    brand_ids = []
    for name in BRANDS:
        brand_id = _id("brand", slugify(name))
        brand_ids.append((brand_id, name))
        logo = f"https://img.shop.local/brands/{slugify(name)}.png"
        catalog.brands.append((brand_id, name, slugify(name), f"{name}: demo brand.", logo, EPOCH, EPOCH))
    reviewers = [reviewer_id(n) for n in range(REVIEWERS)]
    for number, user_id in enumerate(reviewers):
        name = f"{LAST_NAMES[number % len(LAST_NAMES)]} {FIRST_NAMES[number % len(FIRST_NAMES)]}"
        catalog.authors.append((user_id, name, EPOCH - timedelta(days=400)))
    for number in range(1, products + 1):
        _product(rng, catalog, number, rng.choice(leaves), rng.choice(brand_ids), reviewers)
    return catalog


def _product(
    rng: random.Random,
    catalog: Catalog,
    number: int,
    leaf: Leaf,
    brand: tuple[uuid.UUID, str],
    reviewers: list[uuid.UUID],
) -> None:
    product_id = demo_product_id(number)
    brand_id, brand_name = brand
    low, high = PRICES[leaf.top]
    price = float(round(low * (high / low) ** rng.random(), -3))
    edition = rng.choice(EDITIONS)
    model = f"{rng.choice('ABCDEFGHKMPRSTVXZ')}{rng.randint(1, 99)}"
    name = " ".join(p for p in (brand_name, rng.choice(ADJECTIVES), leaf.noun, model, edition) if p)
    material, origin = rng.choice(MATERIALS), rng.choice(ORIGINS)
    description = (
        f"The {brand_name} {leaf.noun} {model}: {material.lower()} build, made in {origin}. "
        f"A {rng.choice(ADJECTIVES).lower()} choice for everyday use."
    )
    created = EPOCH - timedelta(days=rng.randint(0, 730), seconds=rng.randint(0, 86_399))
    status = "active" if rng.random() < 0.96 else rng.choice(("draft", "inactive"))
    for position, (variant, attributes, variant_price) in enumerate(_variants(rng, leaf.top, price)):
        sku = f"DEMO-{number:05d}-{position + 1}"
        catalog.product_variants.append(
            (
                variant_id(product_id, sku),
                product_id,
                position,
                sku,
                variant,
                variant_price,
                _json(attributes),
            )
        )
    facts = (("Material", material), ("Origin", origin), ("Warranty", f"{rng.choice((6, 12, 24))} months"))
    for position, (attribute, value) in enumerate(facts[: rng.randint(2, 3)]):
        catalog.product_attributes.append((product_id, position, attribute, value))
    for position in range(rng.randint(1, 3)):
        url = f"https://img.shop.local/demo/{number}/{position + 1}.jpg"
        catalog.product_images.append((product_id, position, url, f"{name}, picture {position + 1}"))
    total = count = 0
    if status == "active":
        for user_id in rng.sample(reviewers, rng.choice((0, 0, 1, 2, 3, 5, 8))):
            rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 3, 6, 8))[0]
            when = created + timedelta(days=rng.randint(1, 60))
            catalog.reviews.append(
                (
                    _id("review", f"{number}:{user_id}"),
                    product_id,
                    user_id,
                    rating,
                    rng.choice(COMMENTS),
                    when,
                )
            )
            total, count = total + rating, count + 1
    average = round(total / count, 2) if count else 0.0
    slug = f"{slugify(name)}-{product_id.hex[:8]}"
    catalog.products.append(
        (
            product_id,
            SELLER,
            leaf.id,
            brand_id,
            name,
            slug,
            description,
            price,
            status,
            average,
            total,
            count,
            created,
            created,
            True,  # svc_inventory's seed puts 50-500 units of every demo product on hand
        )
    )


def _json(attributes: dict[str, str]) -> str:
    return msgspec.json.encode(attributes).decode()
