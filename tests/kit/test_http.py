from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from kit.errors import FieldError, ValidationError
from kit.http import Model, decode, like_pattern, page_of, paging, search_pattern, sorting

pytestmark = pytest.mark.offline


class Signup(Model):
    email: str
    age: Annotated[int, msgspec.Meta(ge=18)]
    nickname: str | None = None

    def __post_init__(self) -> None:
        if "@" not in self.email:
            raise ValueError("email: must be an email address")


def error_of(body: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        decode(body, Signup)
    return caught.value


def test_decodes_camel_case_json_into_the_struct() -> None:
    assert decode(b'{"email": "a@b.c", "age": 30}', Signup) == Signup(email="a@b.c", age=30)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b'{"email": "a@b.c", "age": "30"}', "age", "Expected `int`, got `str`"),
        (b'{"email": "a@b.c", "age": 12}', "age", ">= 18"),
        (b'{"age": 30}', "email", "missing required field `email`"),
        (b'{"email": "a@b.c", "age": 30, "isAdmin": true}', "isAdmin", "unknown field `isAdmin`"),
        (b'{"email": "nope", "age": 30}', "email", "must be an email address"),
        (b'{"email": "a@b.c", "age": 30', "body", "malformed JSON"),
        (b"[1, 2]", "body", "Expected `object`, got `array`"),
    ],
)
def test_bad_input_becomes_a_400_naming_the_field(body: bytes, field: str, fragment: str) -> None:
    error = error_of(body)
    assert error.status == 400 and error.kind == "ValidationError"
    assert error.details[0].field == field
    assert fragment in error.details[0].message


def test_an_empty_body_is_refused() -> None:
    assert error_of(b"").message == "A JSON request body is required"


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (1, 20)), ({"page": "3", "pageSize": "100"}, (3, 100)), ({"page": "", "pageSize": "1"}, (1, 1))],
)
def test_paging_reads_the_contract_parameters(query: dict[str, str], expected: tuple[int, int]) -> None:
    p = paging(query, Signup)
    assert (p.page, p.page_size) == expected


@pytest.mark.parametrize("query", [{"page": "0"}, {"pageSize": "101"}, {"pageSize": "0"}, {"page": "x"}])
def test_paging_out_of_bounds_is_a_400(query: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        paging(query, Signup)
    assert caught.value.details == [FieldError(next(iter(query)), caught.value.details[0].message)]


def test_page_counts_total_pages() -> None:
    page = page_of(["a"], paging({"page": "8", "pageSize": "20"}, Signup), 150)
    assert msgspec.json.decode(msgspec.json.encode(page)) == {
        "items": ["a"],
        "page": 8,
        "pageSize": 20,
        "totalCount": 150,
        "totalPages": 8,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, ("createdAt", "DESC")), ({"sortBy": "name", "sortOrder": "asc"}, ("name", "ASC"))],
)
def test_sorting_reads_sort_by_and_order(query: dict[str, str], expected: tuple[str, str]) -> None:
    assert sorting(query, ("createdAt", "name")) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"sortBy": "password"}, "sortBy"),
        ({"sortOrder": "sideways"}, "sortOrder"),
        ({"sortBy": "name;--"}, "sortBy"),
    ],
)
def test_sorting_refuses_anything_else_with_a_400(query: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sorting(query, ("createdAt", "name"))
    assert caught.value.details[0].field == field


def test_fields_trims_each_item_to_the_wire_names_asked_for_in_that_order() -> None:
    wanted = paging({"fields": "nickname, email,nickname"}, Signup)
    page = page_of([Signup(email="a@b.c", age=20), Signup(email="d@e.f", age=30, nickname="d")], wanted, 2)
    assert page.items == [{"nickname": None, "email": "a@b.c"}, {"nickname": "d", "email": "d@e.f"}]
    assert list(page.items[0]) == ["nickname", "email"]
    assert paging({"fields": " , "}, Signup).fields is None


def test_an_unknown_field_is_a_400_listing_the_known_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        paging({"fields": "email,password"}, Signup)
    [detail] = caught.value.details
    assert detail.field == "fields"
    assert detail.message == "Unknown fields: password; there are email, age, nickname"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("shoe", "%shoe%"), ("100%", "%100\\%%"), ("a_b", "%a\\_b%"), ("back\\", "%back\\\\%")],
)
def test_like_patterns_take_wildcards_literally(text: str, pattern: str) -> None:
    assert like_pattern(text) == pattern


def test_search_is_trimmed_bounded_and_absent_when_blank() -> None:
    assert search_pattern({"search": "  red "}) == "%red%"
    assert search_pattern({"search": "   "}) is None
    assert search_pattern({}) is None
    with pytest.raises(ValidationError) as caught:
        search_pattern({"search": "x" * 101})
    assert caught.value.details[0].field == "search"
