"""The query string of `GET /api/products`, decoded and checked once, and its canonical cache key.

Every parameter is validated (a bad one is a 400 naming it, an unknown or repeated one too), and two
spellings of the same query (`pageSize=020` and `pageSize=20`, parameters in another order, `sortOrder=DESC`)
decode to the same `ListQuery` and so share one cache entry.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable

import msgspec

from kit.errors import invalid
from svc_product.schemas import MAX_PRICE, ProductSummary

MAX_PAGE = 10_000
MAX_PAGE_SIZE = 100
MAX_IDS = 100
MAX_SEARCH = 100
MAX_RATING = 5.0
# `attributes=colour:Red,colour:Blue,size:M`: at most this many name:value pairs.
MAX_ATTRIBUTE_PAIRS = 20
# Letters and digits of any script; everything else (quotes, operators, `%`, `_`) only separates words.
_WORD = re.compile(r"[^\W_]+")

SORTS = ("price", "name", "createdAt", "rating")
STATUSES = ("active", "draft", "inactive", "all")
FACETS = ("category", "brand", "price", "rating", "attributes", "stock")
# `fields=` names, camelCase as on the wire, mapped to ProductSummary's attributes.
FIELDS = {field.encode_name: field.name for field in msgspec.structs.fields(ProductSummary)}
PARAMETERS = (
    "search",
    "categoryId",
    "brandId",
    "sellerId",
    "minPrice",
    "maxPrice",
    "minRating",
    "attributes",
    "inStock",
    "facets",
    "status",
    "sortBy",
    "sortOrder",
    "page",
    "pageSize",
    "fields",
    "ids",
)


# The optional filters in a cache key, by attribute.
_KEY_PARTS = (
    ("category_id", "c"),
    ("brand_id", "b"),
    ("seller_id", "s"),
    ("min_price", "min"),
    ("max_price", "max"),
    ("min_rating", "r"),
    ("in_stock", "i"),
)


_key_json = msgspec.json.Encoder()


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a product list asks for, normalised."""

    search: str | None = None
    words: tuple[str, ...] = ()
    category_id: uuid.UUID | None = None
    brand_id: uuid.UUID | None = None
    seller_id: uuid.UUID | None = None
    min_price: float | None = None
    max_price: float | None = None
    min_rating: float | None = None
    # Only products svc_inventory says can (True) or cannot (False) be bought now.
    in_stock: bool | None = None
    # Variant attributes by name, each with the values any of which will do; sorted, so canonical.
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    facets: tuple[str, ...] = ()
    status: str = "active"
    sort_by: str | None = None
    sort_order: str | None = None
    page: int = 1
    page_size: int = 20
    fields: tuple[str, ...] | None = None
    ids: tuple[uuid.UUID, ...] | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def ordering(self) -> tuple[str, bool]:
        """(sort key, descending): relevance for a search, else newest first, unless asked otherwise."""
        key = self.sort_by or ("relevance" if self.words else "createdAt")
        if self.sort_order is None:
            return key, key not in ("price", "name")
        return key, self.sort_order == "desc"

    def cache_key(self) -> str:
        """The canonical form of the query: equal queries give equal keys, in a readable form."""
        parts = [f"p={self.page}", f"n={self.page_size}", f"st={self.status}"]
        for attr, label in _KEY_PARTS:
            if (value := getattr(self, attr)) is not None:
                parts.append(f"{label}={value}")
        if self.search is not None:
            # Quoted (JSON): a search for "a&c=..." must not read as another filter.
            parts.append(f"q={_key_json.encode(self.search).decode()}")
        if self.sort_by is not None or self.sort_order is not None:
            parts.append(f"o={self.sort_by or ''}:{self.sort_order or ''}")
        if self.attributes:
            parts.append(f"a={_key_json.encode(self.attributes).decode()}")
        if self.facets:
            parts.append(f"fa={','.join(self.facets)}")
        if self.fields is not None:
            parts.append(f"f={','.join(self.fields)}")
        return "&".join(parts)


def once(items: Iterable[tuple[str, str]], known: Iterable[str]) -> dict[str, str]:
    """The parameters by name; an unknown or repeated one is a 400."""
    given: dict[str, str] = {}
    for name, value in items:
        if name not in known:
            raise invalid(name, f"Unknown parameter {name}; expected one of {', '.join(sorted(known))}")
        if name in given:
            raise invalid(name, f"{name} is given more than once")
        given[name] = value
    return given


def _uuid(name: str, raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a UUID") from None


def _price(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a number") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_PRICE:
        raise invalid(name, f"{name} must be between 0 and {MAX_PRICE:.2f}")
    return value


def _rating(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_RATING:
        raise invalid("minRating", f"minRating must be a number between 0 and {MAX_RATING:g}")
    return value


def _attributes(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`colour:Red,colour:Blue,size:M` -> (("colour", ("Blue", "Red")), ("size", ("M",)))."""
    chosen: dict[str, set[str]] = {}
    pairs = [part for part in raw.split(",") if part.strip()]
    for pair in pairs:
        name, colon, value = pair.partition(":")
        if not colon or not name.strip() or not value.strip():
            raise invalid("attributes", "attributes must list name:value pairs, such as colour:Red,size:M")
        chosen.setdefault(name.strip(), set()).add(value.strip())
    if len(pairs) > MAX_ATTRIBUTE_PAIRS:
        raise invalid("attributes", f"attributes must list at most {MAX_ATTRIBUTE_PAIRS} name:value pairs")
    return tuple((name, tuple(sorted(values))) for name, values in sorted(chosen.items()))


def _int(name: str, raw: str, high: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise invalid(name, f"{name} must be an integer between 1 and {high}")
    value = int(raw)
    if not 1 <= value <= high:
        raise invalid(name, f"{name} must be an integer between 1 and {high}")
    return value


def _names(name: str, raw: str, allowed: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [part for part in chosen if part not in allowed]
    if not chosen or unknown:
        raise invalid(name, f"{name} must list some of: {', '.join(allowed)}")
    return chosen


def search_words(text: str) -> tuple[str, ...]:
    """The words of a search, as they are matched (each also as a prefix of a longer word)."""
    return tuple(_WORD.findall(text.lower()))[:10]


def parse(items: Iterable[tuple[str, str]]) -> ListQuery:
    """Decode the query string's (name, value) pairs; raise a 400 naming the first bad parameter."""
    given = once(items, PARAMETERS)
    if "ids" in given:
        return _batch(given)
    values: dict[str, object] = {}
    if search := " ".join(given.get("search", "").split()):
        if len(search) > MAX_SEARCH:
            raise invalid("search", f"search must be at most {MAX_SEARCH} characters")
        values["search"] = search.lower()
        values["words"] = search_words(search)
    for name, attr in (("categoryId", "category_id"), ("brandId", "brand_id"), ("sellerId", "seller_id")):
        if raw := given.get(name):
            values[attr] = _uuid(name, raw)
    for name, attr in (("minPrice", "min_price"), ("maxPrice", "max_price")):
        if raw := given.get(name):
            values[attr] = _price(name, raw)
    low, high = values.get("min_price"), values.get("max_price")
    if isinstance(low, float) and isinstance(high, float) and low > high:
        raise invalid("minPrice", "minPrice must not be greater than maxPrice")
    if raw := given.get("minRating"):
        values["min_rating"] = _rating(raw)
    if raw := given.get("inStock"):
        if raw.lower() not in ("true", "false"):
            raise invalid("inStock", "inStock must be true or false")
        values["in_stock"] = raw.lower() == "true"
    if raw := given.get("attributes"):
        values["attributes"] = _attributes(raw)
    if raw := given.get("facets"):
        values["facets"] = tuple(sorted(_names("facets", raw, FACETS)))
    if raw := given.get("status"):
        if raw.lower() not in STATUSES:
            raise invalid("status", f"status must be one of {', '.join(STATUSES)}")
        values["status"] = raw.lower()
    if raw := given.get("sortBy"):
        if raw not in SORTS:
            raise invalid("sortBy", f"sortBy must be one of {', '.join(SORTS)}")
        values["sort_by"] = raw
    if raw := given.get("sortOrder"):
        values["sort_order"] = _order(raw)
    if raw := given.get("page"):
        values["page"] = _int("page", raw, MAX_PAGE)
    if raw := given.get("pageSize"):
        values["page_size"] = _int("pageSize", raw, MAX_PAGE_SIZE)
    if raw := given.get("fields"):
        values["fields"] = _names("fields", raw, FIELDS)
    return ListQuery(**values)  # type: ignore[arg-type]


def _order(raw: str) -> str:
    order = raw.lower()
    if order not in ("asc", "desc"):
        raise invalid("sortOrder", "sortOrder must be asc or desc")
    return order


def _batch(given: dict[str, str]) -> ListQuery:
    """`?ids=a,b,c`: the internal batch read (svc_order prices a cart with it in one call)."""
    if extra := sorted(set(given) - {"ids"}):
        raise invalid(extra[0], f"ids cannot be combined with {', '.join(extra)}")
    raw_ids = [part.strip() for part in given["ids"].split(",") if part.strip()]
    if not 1 <= len(raw_ids) <= MAX_IDS:
        raise invalid("ids", f"ids must list 1 to {MAX_IDS} product ids")
    ids = tuple(dict.fromkeys(_uuid("ids", raw) for raw in raw_ids))
    return ListQuery(ids=ids, page_size=len(ids))


class ReviewQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a page of reviews asks for: newest first unless told otherwise."""

    page: int = 1
    page_size: int = 20
    sort_by: str = "createdAt"
    descending: bool = True

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def cache_key(self) -> str:
        return f"p={self.page}&n={self.page_size}&o={self.sort_by}:{'desc' if self.descending else 'asc'}"


REVIEW_PARAMETERS = ("page", "pageSize", "sortBy", "sortOrder")


def parse_reviews(items: Iterable[tuple[str, str]]) -> ReviewQuery:
    given = once(items, REVIEW_PARAMETERS)
    values: dict[str, object] = {}
    if raw := given.get("page"):
        values["page"] = _int("page", raw, MAX_PAGE)
    if raw := given.get("pageSize"):
        values["page_size"] = _int("pageSize", raw, MAX_PAGE_SIZE)
    if raw := given.get("sortBy"):
        if raw not in ("createdAt", "rating"):
            raise invalid("sortBy", "sortBy must be createdAt or rating")
        values["sort_by"] = raw
    if raw := given.get("sortOrder"):
        values["descending"] = _order(raw) == "desc"
    return ReviewQuery(**values)  # type: ignore[arg-type]
