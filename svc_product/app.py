"""svc_product: the catalog (CONTRACT.md section 4): products, categories, brands, reviews, cache admin."""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kit.app import Service, deps, make_app
from kit.errors import ServiceUnavailable, invalid
from kit.http import JSON, MAX_SEARCH, body_of, path_uuid
from kit.identity import identity, require_role, require_user
from kit.openapi import choice, doc, listing, number, page, text, uuid_param
from kit.representation import answer
from svc_product import caching, catalog, editing, events, fastpath, suggest
from svc_product.config import ProductConfig
from svc_product.query import FACETS, MAX_IDS, MAX_PAGE, MAX_RATING, SORTS, STATUSES, parse, parse_reviews
from svc_product.schemas import (
    Brand,
    BrandInput,
    BrandPatch,
    CachePurge,
    CacheStats,
    Category,
    CategoryInput,
    CategoryNode,
    CategoryPatch,
    ProductDetail,
    ProductInput,
    ProductPage,
    ProductPatch,
    ProductSummary,
    ProductView,
    Review,
    ReviewInput,
    ReviewPage,
)
from svc_product.stock import STOCK
from svc_product.suggest import Suggestions

SELLERS = ("Seller", "Admin")


class Raw(Response):
    """A JSON body that is already encoded (usually straight from the cache)."""

    media_type = "application/json"


# -- products -----------------------------------------------------------------------------------------


PRODUCT_LIST = (
    *listing(ProductSummary, sort=SORTS, search="name, description, brand and category", max_page=MAX_PAGE),
    uuid_param("categoryId", "Only products of this category or any below it"),
    uuid_param("brandId", "Only products of this brand"),
    uuid_param("sellerId", "Only products of this seller"),
    number("minPrice", "Lowest price"),
    number("maxPrice", "Highest price"),
    choice("status", STATUSES, "Beyond active: a seller's own or (Admin) every draft or inactive product"),
    text("ids", f"Comma-separated ids (1 to {MAX_IDS}): their details at once; no other parameter with it"),
    number("minRating", f"Lowest average rating (0 to {MAX_RATING:g})"),
    choice("inStock", ("true", "false"), "Only products that can (true) or cannot (false) be bought now"),
    text("attributes", "Variant attributes as name:value pairs (any value of a name): colour:Red,size:M"),
    text("facets", f"Counts to return beside the page (`facets`), any of: {', '.join(FACETS)}"),
)


@doc(
    "Products: search and filters, or `?ids=a,b` (up to 100) for the detail of several at once",
    response=(ProductPage, page(ProductDetail)),
    params=PRODUCT_LIST,
    conditional=True,
)
async def list_products(request: Request) -> Response:
    query = parse(request.query_params.multi_items())
    d = deps(request)
    if query.ids is not None:
        return Raw(await catalog.product_batch(d, query.ids))
    return answer(request, await catalog.product_list(d, query, identity(request)))


@doc(
    "What a search box offers for `?q=`, the text typed so far: categories, brands, products (10 at most)",
    response=Suggestions,
    params=(text("q", "The text typed so far (required)", max_length=MAX_SEARCH, required=True),),
    conditional=True,
)
async def suggest_products(request: Request) -> Response:
    text = suggest.typed(request.query_params.multi_items())
    return answer(request, await catalog.suggestions(deps(request), text))


@doc(
    "A product with category, brand, variants, attributes, images, rating and stock",
    response=ProductView,
    conditional=True,
)
async def get_product(request: Request) -> Response:
    return await _product_answer(request, path_uuid(request, "productId", "Product not found"))


async def _product_answer(request: Request, product_id: uuid.UUID, status: int = 200) -> Response:
    document, stock_tail = await catalog.product_view(deps(request), product_id, partial(identity, request))
    return answer(request, document, stock_tail, status)


@doc(
    "Create a product (its seller is the caller)",
    body=ProductInput,
    response=ProductView,
    status=201,
    auth="Seller",
    errors=(409, 422),
)
async def create_product(request: Request) -> Response:
    who = require_role(request, *SELLERS)
    body = await body_of(request, ProductInput)
    product_id = await editing.create_product(deps(request), who, body)
    return await _product_answer(request, product_id, 201)


@doc(
    "Replace a product (its seller or an admin)",
    body=ProductInput,
    response=ProductView,
    auth="Seller",
    errors=(409, 422),
)
async def replace_product(request: Request) -> Response:
    who = require_role(request, *SELLERS)
    product_id = path_uuid(request, "productId", "Product not found")
    body = await body_of(request, ProductInput)
    await editing.update_product(deps(request), who, product_id, body)
    return await _product_answer(request, product_id)


@doc(
    "Change some fields of a product (its seller or an admin)",
    body=ProductPatch,
    response=ProductView,
    auth="Seller",
    errors=(409, 422),
)
async def patch_product(request: Request) -> Response:
    who = require_role(request, *SELLERS)
    product_id = path_uuid(request, "productId", "Product not found")
    body = await body_of(request, ProductPatch)
    await editing.update_product(deps(request), who, product_id, body)
    return await _product_answer(request, product_id)


@doc("Delete a product (soft: order history keeps it)", status=204, auth="Seller")
async def delete_product(request: Request) -> Response:
    who = require_role(request, *SELLERS)
    await editing.delete_product(deps(request), who, path_uuid(request, "productId", "Product not found"))
    return Response(status_code=204)


@doc(
    "A product's reviews, newest first",
    response=ReviewPage,
    conditional=True,
    params=listing(Review, sort=("createdAt", "rating"), max_page=MAX_PAGE, fields=False),
)
async def list_reviews(request: Request) -> Response:
    product_id = path_uuid(request, "productId", "Product not found")
    query = parse_reviews(request.query_params.multi_items())
    return answer(request, await catalog.reviews(deps(request), product_id, query))


@doc(
    "Review a product (once per user, rating 1..5; not one's own product: 403)",
    body=ReviewInput,
    response=Review,
    status=201,
    auth="user",
    errors=(403, 409),
)
async def add_review(request: Request) -> Response:
    who = require_user(request)
    product_id = path_uuid(request, "productId", "Product not found")
    body = await body_of(request, ReviewInput)
    return JSON(await editing.add_review(deps(request), who, product_id, body), 201)


# -- categories and brands ----------------------------------------------------------------------------


@doc("The whole category tree", response=list[CategoryNode], conditional=True)
async def category_tree(request: Request) -> Response:
    return answer(request, await catalog.category_tree(deps(request)))


@doc(
    "A category with its path from the root and its direct sub-categories",
    response=Category,
    conditional=True,
)
async def get_category(request: Request) -> Response:
    category_id = path_uuid(request, "categoryId", "Category not found")
    return answer(request, await catalog.category(deps(request), category_id))


@doc("Create a category", body=CategoryInput, response=Category, status=201, auth="Admin", errors=(409, 422))
async def create_category(request: Request) -> Response:
    require_role(request, "Admin")
    body = await body_of(request, CategoryInput)
    d = deps(request)
    return answer(request, await catalog.category(d, await editing.create_category(d, body)), status=201)


async def _update_category(request: Request, kind: type[CategoryInput] | type[CategoryPatch]) -> Response:
    require_role(request, "Admin")
    category_id = path_uuid(request, "categoryId", "Category not found")
    body = await body_of(request, kind)
    d = deps(request)
    await editing.update_category(d, category_id, body)
    return answer(request, await catalog.category(d, category_id))


@doc(
    "Replace a category (an absent slug stays as it is)",
    body=CategoryInput,
    response=Category,
    auth="Admin",
    errors=(409, 422),
)
async def replace_category(request: Request) -> Response:
    return await _update_category(request, CategoryInput)


@doc(
    "Change some fields of a category, or move it",
    body=CategoryPatch,
    response=Category,
    auth="Admin",
    errors=(409, 422),
)
async def patch_category(request: Request) -> Response:
    return await _update_category(request, CategoryPatch)


@doc("Delete an empty category", status=204, auth="Admin", errors=(409, 422))
async def delete_category(request: Request) -> Response:
    require_role(request, "Admin")
    await editing.delete_category(deps(request), path_uuid(request, "categoryId", "Category not found"))
    return Response(status_code=204)


@doc("Every brand, by name", response=list[Brand], conditional=True)
async def list_brands(request: Request) -> Response:
    return answer(request, await catalog.brands(deps(request)))


@doc("A brand", response=Brand, conditional=True)
async def get_brand(request: Request) -> Response:
    return answer(
        request, await catalog.brand(deps(request), path_uuid(request, "brandId", "Brand not found"))
    )


@doc("Create a brand", body=BrandInput, response=Brand, status=201, auth="Admin", errors=(409,))
async def create_brand(request: Request) -> Response:
    require_role(request, "Admin")
    body = await body_of(request, BrandInput)
    d = deps(request)
    return answer(request, await catalog.brand(d, await editing.create_brand(d, body)), status=201)


async def _update_brand(request: Request, kind: type[BrandInput] | type[BrandPatch]) -> Response:
    require_role(request, "Admin")
    brand_id = path_uuid(request, "brandId", "Brand not found")
    body = await body_of(request, kind)
    d = deps(request)
    await editing.update_brand(d, brand_id, body)
    return answer(request, await catalog.brand(d, brand_id))


@doc(
    "Replace a brand (an absent slug stays as it is)",
    body=BrandInput,
    response=Brand,
    auth="Admin",
    errors=(409,),
)
async def replace_brand(request: Request) -> Response:
    return await _update_brand(request, BrandInput)


@doc("Change some fields of a brand", body=BrandPatch, response=Brand, auth="Admin", errors=(409,))
async def patch_brand(request: Request) -> Response:
    return await _update_brand(request, BrandPatch)


@doc("Delete a brand no product carries", status=204, auth="Admin", errors=(409, 422))
async def delete_brand(request: Request) -> Response:
    require_role(request, "Admin")
    await editing.delete_brand(deps(request), path_uuid(request, "brandId", "Brand not found"))
    return Response(status_code=204)


# -- cache administration -----------------------------------------------------------------------------


@doc("Cache hits and misses of every svc_product process", response=CacheStats, auth="Admin")
async def cache_stats(request: Request) -> Response:
    require_role(request, "Admin")
    cache = deps(request).cache
    assert cache is not None
    return JSON(await caching.stats.totals(cache))


@doc(
    "Purge the catalog's cached entries whose key starts with `?prefix=` (default: all of them)",
    response=CachePurge,
    auth="Admin",
    params=(text("prefix", "Key prefix, e.g. `product:`; empty or absent: every catalog entry"),),
)
async def purge_cache(request: Request) -> Response:
    require_role(request, "Admin")
    params = dict(request.query_params)
    if unknown := sorted(set(params) - {"prefix"}):
        raise invalid(unknown[0], f"Unknown parameter {unknown[0]}; expected prefix")
    prefix = params.get("prefix", "")
    targets = caching.purge_targets(prefix)
    cache = deps(request).cache
    if cache is None or cache.redis is None:
        raise ServiceUnavailable("The cache is not configured")
    deleted = 0
    for target in targets:
        deleted += await caching.purge(cache, target)
    return JSON(CachePurge(prefix=prefix, deleted=deleted))


DETAIL = Route("/api/products/{productId}", get_product, methods=["GET"])
routes = [
    Route("/api/products", list_products, methods=["GET"]),
    Route("/api/products", create_product, methods=["POST"]),
    Route("/api/products/suggest", suggest_products, methods=["GET"]),
    DETAIL,
    Route("/api/products/{productId}", replace_product, methods=["PUT"]),
    Route("/api/products/{productId}", patch_product, methods=["PATCH"]),
    Route("/api/products/{productId}", delete_product, methods=["DELETE"]),
    Route("/api/products/{productId}/reviews", list_reviews, methods=["GET"]),
    Route("/api/products/{productId}/reviews", add_review, methods=["POST"]),
    Route("/api/categories", category_tree, methods=["GET"]),
    Route("/api/categories", create_category, methods=["POST"]),
    Route("/api/categories/{categoryId}", get_category, methods=["GET"]),
    Route("/api/categories/{categoryId}", replace_category, methods=["PUT"]),
    Route("/api/categories/{categoryId}", patch_category, methods=["PATCH"]),
    Route("/api/categories/{categoryId}", delete_category, methods=["DELETE"]),
    Route("/api/brands", list_brands, methods=["GET"]),
    Route("/api/brands", create_brand, methods=["POST"]),
    Route("/api/brands/{brandId}", get_brand, methods=["GET"]),
    Route("/api/brands/{brandId}", replace_brand, methods=["PUT"]),
    Route("/api/brands/{brandId}", patch_brand, methods=["PATCH"]),
    Route("/api/brands/{brandId}", delete_brand, methods=["DELETE"]),
    Route("/api/admin/cache/stats", cache_stats, methods=["GET"]),
    Route("/api/admin/cache", purge_cache, methods=["DELETE"]),
]

service = Service(
    "product",
    routes,
    migrations=Path(__file__).parent / "migrations",
    handlers=events.handlers,
    resources=[STOCK],
    jobs=[caching.upkeep, catalog.follow],
    middleware=[Middleware(fastpath.CachedDetail, route=DETAIL)],
    settings=ProductConfig,
)
app = make_app(service)
