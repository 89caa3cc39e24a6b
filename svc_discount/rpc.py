"""svc_discount's gRPC API (protos/discount.proto): the same ledger as the REST handlers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TypedDict

import grpc

from kit.app import Deps
from kit.errors import invalid
from kit.grpc import servicer, uuid_field
from protos import discount_pb2 as pb
from protos import discount_pb2_grpc
from svc_discount import ledger
from svc_discount.ledger import Answer
from svc_discount.pricing import OrderLine
from svc_discount.schemas import money

MAX_LINES = 200


def _optional_uuid(field: str, value: str) -> uuid.UUID | None:
    return uuid_field(field, value) if value else None


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
        parsed.append(
            OrderLine(
                uuid_field(f"lines[{i}].product_id", line.product_id),
                _optional_uuid(f"lines[{i}].category_id", line.category_id),
                line.quantity,
                _money(f"lines[{i}].unit_price", line.unit_price),
            )
        )
    return parsed


def _order(
    request: pb.ValidateDiscountRequest | pb.ApplyDiscountRequest,
) -> tuple[str | None, Decimal, list[OrderLine]]:
    """The code (None: the best automatic discount), subtotal and lines both calls carry."""
    if len(request.code) > 40:
        raise invalid("code", "at most 40 characters")
    return request.code.strip() or None, _money("subtotal", request.subtotal), _lines(request.lines)


class _Answered(TypedDict):
    """The fields both responses share."""

    discount_amount: str
    reason: str
    code: str
    discount_id: str


def _answered(answer: Answer) -> _Answered:
    return _Answered(
        discount_amount=f"{answer.amount:f}",
        reason=answer.reason,
        code=answer.code,
        discount_id=str(answer.discount_id or ""),
    )


class DiscountServicer(discount_pb2_grpc.DiscountServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def ValidateDiscount(
        self, request: pb.ValidateDiscountRequest, context: grpc.aio.ServicerContext
    ) -> pb.ValidateDiscountResponse:
        code, subtotal, lines = _order(request)
        user_id = _optional_uuid("user_id", request.user_id)
        answer = await ledger.validate(self.deps.db, code, user_id, subtotal, lines)
        return pb.ValidateDiscountResponse(valid=answer.valid, **_answered(answer))

    async def ApplyDiscount(
        self, request: pb.ApplyDiscountRequest, context: grpc.aio.ServicerContext
    ) -> pb.ApplyDiscountResponse:
        order_id = uuid_field("order_id", request.order_id)
        user_id = uuid_field("user_id", request.user_id)
        code, subtotal, lines = _order(request)
        answer = await ledger.apply(self.deps.db, order_id, code, user_id, subtotal, lines)
        return pb.ApplyDiscountResponse(applied=answer.valid, existing=answer.existing, **_answered(answer))


register = servicer(
    discount_pb2_grpc.add_DiscountServiceServicer_to_server,
    DiscountServicer,
    pb.DESCRIPTOR.services_by_name["DiscountService"].full_name,
)
