"""svc_discount's gRPC API (protos/discount.proto): the same ledger as the REST handlers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import grpc

from kit.app import Deps
from kit.errors import invalid
from protos import discount_pb2 as pb
from protos import discount_pb2_grpc
from svc_discount import ledger
from svc_discount.ledger import Answer
from svc_discount.pricing import OrderLine
from svc_discount.schemas import money

MAX_LINES = 200


def _uuid(field: str, value: str, required: bool = True) -> uuid.UUID | None:
    if not value and not required:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid(field, "must be a UUID") from None


def _money(field: str, value: str) -> Decimal:
    try:
        amount = Decimal(value)
        money(field, amount)
    except (InvalidOperation, ValueError) as exc:
        raise invalid(
            field, str(exc).split(": ", 1)[-1] if isinstance(exc, ValueError) else "not a decimal"
        ) from None
    return amount


def _lines(lines: Sequence[pb.OrderLine]) -> list[OrderLine]:
    if len(lines) > MAX_LINES:
        raise invalid("lines", f"at most {MAX_LINES} lines")
    parsed = []
    for i, line in enumerate(lines):
        if line.quantity < 1:
            raise invalid(f"lines[{i}].quantity", "must be at least 1")
        product = _uuid(f"lines[{i}].product_id", line.product_id)
        assert product is not None
        parsed.append(
            OrderLine(
                product,
                _uuid(f"lines[{i}].category_id", line.category_id, required=False),
                line.quantity,
                _money(f"lines[{i}].unit_price", line.unit_price),
            )
        )
    return parsed


def _code(code: str) -> str | None:
    if len(code) > 40:
        raise invalid("code", "at most 40 characters")
    return code.strip() or None


def _amount(answer: Answer) -> str:
    return f"{answer.amount:f}"


class DiscountServicer(discount_pb2_grpc.DiscountServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def ValidateDiscount(
        self, request: pb.ValidateDiscountRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateDiscountResponse:
        answer = await ledger.validate(
            self.deps.db,
            _code(request.code),
            _uuid("user_id", request.user_id, required=False),
            _money("subtotal", request.subtotal),
            _lines(request.lines),
        )
        return pb.ValidateDiscountResponse(
            valid=answer.valid,
            discount_amount=_amount(answer),
            reason=answer.reason,
            code=answer.code,
            discount_id=str(answer.discount_id or ""),
        )

    async def ApplyDiscount(
        self, request: pb.ApplyDiscountRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyDiscountResponse:
        order_id = _uuid("order_id", request.order_id)
        user_id = _uuid("user_id", request.user_id)
        assert order_id is not None and user_id is not None
        answer = await ledger.apply(
            self.deps.db,
            order_id,
            _code(request.code),
            user_id,
            _money("subtotal", request.subtotal),
            _lines(request.lines),
        )
        return pb.ApplyDiscountResponse(
            applied=answer.valid,
            discount_amount=_amount(answer),
            reason=answer.reason,
            code=answer.code,
            discount_id=str(answer.discount_id or ""),
            existing=answer.existing,
        )


def register(server: grpc.aio.Server, deps: Deps) -> list[str]:
    """Adds the discount servicer to `server` (for `kit.grpc.GrpcServer`)."""
    discount_pb2_grpc.add_DiscountServiceServicer_to_server(DiscountServicer(deps), server)
    return [pb.DESCRIPTOR.services_by_name["DiscountService"].full_name]
