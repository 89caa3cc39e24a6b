"""The routing table as data: which cluster, and whether a token is needed."""

from __future__ import annotations

import pytest

from edge.routes import Route, RouteTable

pytestmark = pytest.mark.offline

TABLE = RouteTable()


@pytest.mark.parametrize(
    ("method", "path", "cluster"),
    [
        ("POST", "/api/auth/login", "auth"),
        ("GET", "/api/auth/me", "auth"),
        ("GET", "/api/users/me", "user"),
        ("GET", "/api/cart", "order"),
        ("POST", "/api/orders/checkout", "order"),
        ("GET", "/api/products", "product"),
        ("GET", "/api/categories/7", "product"),
        ("GET", "/api/brands", "product"),
        ("DELETE", "/api/admin/cache", "product"),
        ("GET", "/api/admin/cache/stats", "product"),
        ("GET", "/api/payments/orders/1", "payment"),
        ("PUT", "/api/inventory/1", "inventory"),
        ("GET", "/api/discounts", "discount"),
        ("POST", "/api/campaigns", "discount"),
        ("GET", "/api/notifications", "notify"),
        ("POST", "/api/notifications/sms/status", "notify"),
        ("GET", "/api/admin/dlq", "notify"),
        ("POST", "/api/admin/dlq/notify.order.confirmed.dlq/redrive", "notify"),
    ],
)
def test_each_prefix_routes_to_its_cluster(method: str, path: str, cluster: str) -> None:
    route = TABLE.match(method, path)
    assert route is not None
    assert route.cluster == cluster


def test_suggestions_have_their_own_route_and_a_short_timeout() -> None:
    route = TABLE.match("GET", "/api/products/suggest")
    assert route is not None and route.label == "GET|HEAD /api/products/suggest"
    assert route.cluster == "product" and route.response_timeout == 1.0
    assert TABLE.match("GET", "/api/products/suggest/x") == TABLE.match("GET", "/api/products/1")


@pytest.mark.parametrize(
    "path",
    ["/", "/api", "/api/", "/api/authx", "/api/productsx/1", "/api/admin", "/api/admin/cachex", "/apix/auth"],
)
def test_prefixes_match_on_segment_boundaries_only(path: str) -> None:
    assert TABLE.match("GET", path) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/verify-email"),
        ("POST", "/api/auth/resend-verification"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/products"),
        ("GET", "/api/products/suggest"),
        ("HEAD", "/api/products/1/reviews"),
        ("GET", "/api/categories"),
        ("GET", "/api/brands/3"),
        ("GET", "/api/users/5b1e/avatar"),
        ("GET", "/api/payments/vnpay/return"),
        ("POST", "/api/payments/momo/ipn"),
        ("GET", "/api/discounts/SAVE10/validate"),
        ("GET", "/api/inventory/5b1e"),
        ("GET", "/api/payments/pay/5b1e"),
        ("POST", "/api/notifications/sms/status"),
    ],
)
def test_public_routes_need_no_token(method: str, path: str) -> None:
    route = TABLE.match(method, path)
    assert route is not None and route.public


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/auth/login"),
        ("POST", "/api/auth/login/extra"),
        ("GET", "/api/notifications/sms/status"),
        ("GET", "/api/admin/dlq"),
        ("GET", "/api/auth/me"),
        ("POST", "/api/products"),
        ("PATCH", "/api/categories/1"),
        ("PUT", "/api/users/me/avatar"),
        ("PUT", "/api/inventory/5b1e"),
        ("POST", "/api/payments/pay/5b1e"),
        ("GET", "/api/users/a/b/avatar"),
        ("GET", "/api/users//avatar"),
        ("GET", "/api/payments/orders/1"),
        ("POST", "/api/payments/1/refund"),
        ("POST", "/api/discounts/SAVE10/validate"),
        ("GET", "/api/discounts"),
        ("GET", "/api/cart"),
    ],
)
def test_everything_else_needs_a_token(method: str, path: str) -> None:
    route = TABLE.match(method, path)
    assert route is not None and not route.public


def test_lists_each_cluster_once_in_table_order() -> None:
    assert TABLE.clusters == (
        "auth",
        "user",
        "order",
        "product",
        "payment",
        "inventory",
        "discount",
        "notify",
    )


def test_refuses_a_pattern_outside_api() -> None:
    with pytest.raises(ValueError, match="/api/"):
        Route("/health/**", "edge")
