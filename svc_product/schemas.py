"""Requests and responses of svc_product, camelCase on the wire.

Request Structs name every field a client may set; anything else (sellerId, rating, reviewCount,
timestamps) is an unknown field and a 400, so mass assignment cannot happen.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from kit.http import Model

MAX_PRICE = 999_999_999_999.99
_SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)

Status = Literal["draft", "active", "inactive"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_SLUG)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Price = Annotated[float, msgspec.Meta(ge=0, le=MAX_PRICE)]
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
AttributeName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
AttributeValue = Annotated[str, msgspec.Meta(max_length=500)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


def check_price(field: str, value: float) -> None:
    """Money has at most 2 decimals (CONTRACT.md section 2)."""
    if abs(round(value, 2) - value) > 1e-9:
        raise ValueError(f"{field}: must have at most 2 decimals")


def check_name(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field}: must not be blank")
    return value


class VariantInput(Model):
    sku: Sku
    price: Price
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    attributes: Annotated[dict[AttributeName, AttributeValue], msgspec.Meta(max_length=20)] = {}

    def __post_init__(self) -> None:
        check_price("price", self.price)
        self.name = self.name.strip() or self.sku


class AttributeInput(Model):
    name: AttributeName
    value: AttributeValue

    def __post_init__(self) -> None:
        self.name = check_name("name", self.name)


class ImageInput(Model):
    url: Url
    alt_text: Annotated[str, msgspec.Meta(max_length=300)] = ""

    def __post_init__(self) -> None:
        if not _URL.match(self.url):
            raise ValueError("url: must be an http or https URL")


Variants = Annotated[list[VariantInput], msgspec.Meta(max_length=100)]
Attributes = Annotated[list[AttributeInput], msgspec.Meta(max_length=50)]
Images = Annotated[list[ImageInput], msgspec.Meta(max_length=20)]


def check_collections(variants: list[VariantInput], attributes: list[AttributeInput]) -> None:
    skus = [v.sku.lower() for v in variants]
    if len(set(skus)) != len(skus):
        raise ValueError("variants: SKUs must be unique within a product")
    names = [a.name.lower() for a in attributes]
    if len(set(names)) != len(names):
        raise ValueError("attributes: names must be unique within a product")


class ProductInput(Model):
    """The body of POST and PUT: the whole product as its seller describes it."""

    name: Name
    price: Price
    category_id: uuid.UUID
    slug: Slug | None = None
    description: Text = ""
    status: Status = "active"
    brand_id: uuid.UUID | None = None
    variants: Variants = []
    attributes: Attributes = []
    images: Images = []

    def __post_init__(self) -> None:
        self.name = check_name("name", self.name)
        check_price("price", self.price)
        check_collections(self.variants, self.attributes)


class ProductPatch(Model):
    """The body of PATCH: only the fields given change; a given collection is replaced whole."""

    name: Name | UnsetType = UNSET
    price: Price | UnsetType = UNSET
    category_id: uuid.UUID | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    brand_id: uuid.UUID | UnsetType | None = UNSET
    variants: Variants | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET
    images: Images | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            self.name = check_name("name", self.name)
        if self.price is not UNSET:
            check_price("price", self.price)
        check_collections(self.variants or [], self.attributes or [])


class CategoryRef(Model):
    id: uuid.UUID
    name: str
    slug: str


class BrandRef(Model):
    id: uuid.UUID
    name: str
    slug: str


class CategoryInfo(Model):
    id: uuid.UUID
    name: str
    slug: str
    # From the root down to this category, itself included.
    path: list[CategoryRef]


class Variant(Model):
    id: uuid.UUID
    sku: str
    name: str
    price: float
    attributes: dict[str, str]


class Attribute(Model):
    name: str
    value: str


class Image(Model):
    url: str
    alt_text: str


class ProductDetail(Model):
    """`GET /api/products/{id}` without its `stock`, which is added per response (see svc_product.stock)."""

    id: uuid.UUID
    name: str
    slug: str
    description: str
    price: float
    status: str
    seller_id: uuid.UUID
    category: CategoryInfo
    brand: BrandRef | None
    variants: list[Variant]
    attributes: list[Attribute]
    images: list[Image]
    rating: float
    review_count: int
    created_at: datetime
    updated_at: datetime
    # Raised by every change of the product (its events carry it too): the newest wins.
    version: int


class StockLevel(Model):
    """The product's stock as svc_inventory last reported it (a few seconds old at most)."""

    available: int
    reserved: int
    on_hand: int
    updated_at: datetime


class ProductView(ProductDetail):
    """A product as the API answers it: the detail plus its stock (null when inventory is unreachable)."""

    stock: StockLevel | None


class ProductSummary(Model):
    """One item of `GET /api/products`."""

    id: uuid.UUID
    name: str
    slug: str
    price: float
    status: str
    seller_id: uuid.UUID
    category_id: uuid.UUID
    brand_id: uuid.UUID | None
    rating: float
    review_count: int
    image: str | None
    created_at: datetime
    updated_at: datetime


class ProductPage(Model):
    items: list[ProductSummary]
    page: int
    page_size: int
    total_count: int
    total_pages: int
    # Present when asked for (`?facets=`): counts per category, brand, price band, rating band, attribute,
    # and in stock or not.
    facets: dict[str, Any] | None = None
    # Present when the search as typed found nothing but its spelling correction did.
    did_you_mean: str | None = None


class CategoryInput(Model):
    name: Name
    slug: Slug | None = None
    parent_id: uuid.UUID | None = None
    description: Text = ""
    position: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0

    def __post_init__(self) -> None:
        self.name = check_name("name", self.name)


class CategoryPatch(Model):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    parent_id: uuid.UUID | UnsetType | None = UNSET
    description: Text | UnsetType = UNSET
    position: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            self.name = check_name("name", self.name)


class CategoryNode(Model):
    """A category with everything below it: `GET /api/categories` is a list of these."""

    id: uuid.UUID
    name: str
    slug: str
    description: str
    position: int
    children: list[CategoryNode]


class Category(Model):
    """`GET /api/categories/{id}`: the category, where it sits and what is directly below it."""

    id: uuid.UUID
    name: str
    slug: str
    description: str
    position: int
    parent_id: uuid.UUID | None
    path: list[CategoryRef]
    children: list[CategoryRef]
    created_at: datetime
    updated_at: datetime


class BrandInput(Model):
    name: Name
    slug: Slug | None = None
    description: Text = ""
    logo_url: Url | None = None

    def __post_init__(self) -> None:
        self.name = check_name("name", self.name)
        if self.logo_url is not None and not _URL.match(self.logo_url):
            raise ValueError("logoUrl: must be an http or https URL")


class BrandPatch(Model):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    logo_url: Url | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if self.name is not UNSET:
            self.name = check_name("name", self.name)
        if isinstance(self.logo_url, str) and not _URL.match(self.logo_url):
            raise ValueError("logoUrl: must be an http or https URL")


class Brand(Model):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    logo_url: str | None
    created_at: datetime
    updated_at: datetime


class ReviewInput(Model):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""

    def __post_init__(self) -> None:
        self.comment = self.comment.strip()


class Review(Model):
    id: uuid.UUID
    product_id: uuid.UUID
    user_id: uuid.UUID
    author_name: str
    rating: int
    comment: str
    created_at: datetime


class ReviewPage(Model):
    items: list[Review]
    page: int
    page_size: int
    total_count: int
    total_pages: int


class CacheStats(Model):
    """Cache lookups of every svc_product process since the counters were created."""

    hits: int
    misses: int
    errors: int
    hit_ratio: float
    redis_available: bool


class CachePurge(Model):
    prefix: str
    deleted: int
