"""A minimal app behind kit's middleware, served by kit.serve with several workers in
tests/kit/test_metrics_workers.py: each answer names the worker process that gave it."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kit.metrics import Observe, metrics_endpoint


async def worker(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


app = Starlette(
    routes=[Route("/worker", worker), Route("/metrics", metrics_endpoint)], middleware=[Middleware(Observe)]
)
