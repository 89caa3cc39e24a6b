"""svc_discount in-process (HTTP through httpx, gRPC on a free port) with real PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest

from kit import settings
from kit.app import make_app
from protos import discount_pb2_grpc
from svc_discount.app import grpc_server, service
from svc_discount.config import DiscountConfig
from tests.support import identity, serve_grpc

# The job that frees usages held too long runs often, so a test sees it act on a backdated usage.
OFTEN = {"DISCOUNT_USAGE_SWEEP_SECONDS": "0.2"}
CONFIG = dataclasses.replace(
    settings.load("discount", {**os.environ, **OFTEN}, own=DiscountConfig), grpc_port=0
)
ADMIN = identity("Admin", email="admin@shop.local")


class Stack(msgspec.Struct):
    http: httpx.AsyncClient
    stub: discount_pb2_grpc.DiscountServiceStub
    db: asyncpg.Pool


@pytest.fixture(scope="package")
async def discounts() -> AsyncIterator[Stack]:
    app = make_app(service, CONFIG)
    async with serve_grpc(app, grpc_server) as (http, ch):
        yield Stack(http, discount_pb2_grpc.DiscountServiceStub(ch), app.state.deps.db)


def new_code(prefix: str = "T") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}".upper()


async def coupon(stack: Stack, **fields: object) -> dict[str, object]:
    body = {"code": new_code(), "name": "Test coupon", "kind": "PERCENTAGE", "value": 10, **fields}
    response = await stack.http.post("/api/discounts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
