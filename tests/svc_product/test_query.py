"""The list query's decoding and cache key, without a server."""

from __future__ import annotations

import uuid

import pytest

from kit.errors import ValidationError
from svc_product.listing import list_statement, tsquery
from svc_product.query import parse, parse_reviews, search_words
from svc_product.store import slugify

pytestmark = pytest.mark.offline


def key(query: str) -> str:
    return parse(pair.split("=", 1) for pair in query.split("&") if pair).cache_key()  # type: ignore[misc]


def test_spellings_of_the_same_query_share_one_cache_entry() -> None:
    category = uuid.uuid4()
    same = [
        f"categoryId={category}&pageSize=20&sortBy=price&sortOrder=asc&search=Blue  Lamp",
        f"search=blue lamp&sortOrder=ASC&sortBy=price&categoryId={str(category).upper()}&page=1",
        f"pageSize=020&search= BLUE lamp &sortBy=price&sortOrder=asc&categoryId={category}&status=active",
    ]
    assert len({key(q) for q in same}) == 1


@pytest.mark.parametrize(
    "other",
    ["page=2", "pageSize=21", "sortBy=name", "sortOrder=desc", "search=lamp", "minPrice=1", "maxPrice=1",
     f"brandId={uuid.uuid4()}", "fields=id", "status=draft", "minRating=4", "attributes=colour:Red",
     "facets=brand"],
)  # fmt: skip
def test_different_queries_have_different_keys(other: str) -> None:
    assert key(other) != key("")


def test_a_search_or_an_attribute_value_never_reads_as_another_parameter_in_the_key() -> None:
    category = uuid.uuid4()
    assert parse([("search", f"a&c={category}")]).cache_key() != key(f"search=a&categoryId={category}")
    one_value = parse([("attributes", "size:M|L")]).cache_key()
    assert one_value != parse([("attributes", "size:M,size:L")]).cache_key()


def test_facets_and_attributes_are_canonical() -> None:
    assert key("facets=price,brand&attributes=size:M,colour:Red,colour:Blue") == key(
        "facets=brand,price,brand&attributes=colour:Blue,size:M,colour:Red"
    )


def test_sort_orders_default_to_what_a_shopper_expects() -> None:
    assert parse([]).ordering == ("createdAt", True)
    assert parse([("search", "lamp")]).ordering == ("relevance", True)
    assert parse([("sortBy", "price")]).ordering == ("price", False)
    assert parse([("sortBy", "rating")]).ordering == ("rating", True)
    assert parse([("sortBy", "name"), ("sortOrder", "desc")]).ordering == ("name", True)


def test_search_words_are_letters_and_digits_of_any_script() -> None:
    assert search_words("Cà phê  sữa'; DROP--table_x 100%") == (
        "cà",
        "phê",
        "sữa",
        "drop",
        "table",
        "x",
        "100",
    )
    assert tsquery(search_words("lapt 15")) == "lapt:* & 15:*"
    assert tsquery(("lptop", "15"), (("laptop", "lapton"), ())) == "(lptop:* | laptop | lapton) & 15:*"
    assert search_words("!!%%") == ()


def test_the_list_statement_passes_every_value_as_a_parameter() -> None:
    query = parse([("search", "x'; DROP TABLE products"), ("minPrice", "5"), ("sortBy", "price")])
    sql, count_sql, args = list_statement(query, None)
    assert "DROP" not in sql and "DROP" not in count_sql
    assert "x:* & drop:* & table:* & products:*" in args and 5.0 in args


def test_an_empty_value_means_the_parameter_is_absent() -> None:
    assert parse([("search", "  "), ("categoryId", ""), ("page", "")]) == parse([])


def test_review_queries_are_checked() -> None:
    assert parse_reviews([("sortBy", "rating"), ("sortOrder", "asc")]).cache_key() == "p=1&n=20&o=rating:asc"
    with pytest.raises(ValidationError):
        parse_reviews([("search", "x")])


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Đà Lạt Café", "da-lat-cafe"),
        ("  Men's  Shirts ", "men-s-shirts"),
        ("!!!", "item"),
        ("Ẩm Thực 100%", "am-thuc-100"),
    ],
)
def test_slugs_are_ascii(text: str, slug: str) -> None:
    assert slugify(text) == slug
