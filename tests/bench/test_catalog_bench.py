"""The catalog's hot functions (run with `pytest tests/bench --benchmark-only`; skipped by default)."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from kit.representation import Representation, pack
from svc_product import documents
from svc_product.listing import list_statement
from svc_product.query import parse

pytestmark = pytest.mark.offline

NOW = datetime(2025, 5, 1, tzinfo=UTC)
QUERY = [
    ("search", "Premium Laptop"),
    ("categoryId", str(uuid.uuid4())),
    ("minPrice", "100000"),
    ("maxPrice", "25000000"),
    ("sortBy", "price"),
    ("sortOrder", "desc"),
    ("page", "3"),
    ("pageSize", "24"),
    ("fields", "id,name,price,image,rating"),
]


def detail_row() -> asyncpg.Record:
    """A row as `store.DETAIL` returns it: a product with 4 variants, 3 attributes and 3 images."""
    path = [
        {"id": str(uuid.uuid4()), "name": name, "slug": name.lower()}
        for name in ("Electronics", "Computers", "Laptops")
    ]
    variants = [
        {"id": str(uuid.uuid4()), "sku": f"DEMO-00001-{n}", "name": f"Black / {n}28 GB", "price": 25990000.0,
         "attributes": {"colour": "Black", "storage": f"{n}28 GB"}}
        for n in range(1, 5)
    ]  # fmt: skip
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "Zentro Premium Laptop X14 Đà Lạt Edition",
        "slug": "zentro-premium-laptop-x14-da-lat-edition-1a2b3c4d",
        "description": "The Zentro Laptop X14: aluminium build, made in Việt Nam. A premium choice.",
        "price": 25990000.0,
        "status": "active",
        "seller_id": uuid.uuid4(),
        "category_path": msgspec.json.encode(path).decode(),
        "brand_id": uuid.uuid4(),
        "brand_name": "Zentro",
        "brand_slug": "zentro",
        "rating": 4.33,
        "review_count": 12,
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "variants": msgspec.json.encode(variants).decode(),
        "attributes": '[{"name": "Material", "value": "Aluminium"}, {"name": "Origin", "value": "Việt Nam"},'
        ' {"name": "Warranty", "value": "24 months"}]',
        "images": msgspec.json.encode(
            [
                {"url": f"https://img.shop.local/demo/1/{n}.jpg", "altText": f"picture {n}"}
                for n in range(1, 4)
            ]
        ).decode(),
    }
    return cast(asyncpg.Record, row)


@pytest.mark.benchmark(group="catalog")
def test_encoding_a_product_detail(benchmark: BenchmarkFixture) -> None:
    row = detail_row()
    assert benchmark(documents.encode_detail, row).startswith(b'{"id":')


@pytest.mark.benchmark(group="catalog")
def test_adding_the_stock_to_a_cached_detail(benchmark: BenchmarkFixture) -> None:
    cached = Representation(pack(documents.encode_detail(detail_row())))
    stock = b'{"available":12,"reserved":2,"onHand":14,"updatedAt":"2025-05-01T00:00:00Z"}'
    assert benchmark(lambda: cached.identity(documents.stock_tail(stock))).endswith(b'Z"}}')


@pytest.mark.benchmark(group="catalog")
def test_gzipping_a_cached_detail_with_its_stock(benchmark: BenchmarkFixture) -> None:
    cached = Representation(pack(documents.encode_detail(detail_row())))
    stock = b'{"available":12,"reserved":2,"onHand":14,"updatedAt":"2025-05-01T00:00:00Z"}'
    assert gzip.decompress(benchmark(lambda: cached.gzip(documents.stock_tail(stock)))).endswith(b'Z"}}')


@pytest.mark.benchmark(group="catalog")
def test_decoding_a_list_query(benchmark: BenchmarkFixture) -> None:
    assert benchmark(parse, QUERY).page == 3


@pytest.mark.benchmark(group="catalog")
def test_building_a_list_cache_key(benchmark: BenchmarkFixture) -> None:
    query = parse(QUERY)
    assert benchmark(query.cache_key).startswith("p=3&n=24")


@pytest.mark.benchmark(group="catalog")
def test_building_a_list_statement(benchmark: BenchmarkFixture) -> None:
    query = parse(QUERY)
    assert "ORDER BY p.price DESC" in benchmark(list_statement, query, None)[0]
