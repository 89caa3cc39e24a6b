"""svc_inventory's gRPC API (protos/inventory.proto): the same flows as the REST handlers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import grpc

from kit.app import Deps
from kit.errors import invalid
from kit.grpc import servicer, uuid_field
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc
from svc_inventory import engine, store
from svc_inventory.reservations import Outcome
from svc_inventory.schemas import MAX_LINE_QUANTITY, MAX_LINES, Line
from svc_inventory.wire import wire_variant

_STATE = {
    None: pb.RESERVATION_STATE_UNSPECIFIED,
    "RESERVED": pb.RESERVED,
    "COMMITTED": pb.COMMITTED,
    "RELEASED": pb.RELEASED,
    "EXPIRED": pb.EXPIRED,
    "RETURNED": pb.RETURNED,
}


def _variant(field: str, value: str) -> uuid.UUID:
    """A line's variant; none means the product-level row."""
    return uuid_field(field, value) if value else store.PRODUCT_LEVEL


def _lines(lines: Sequence[pb.StockLine]) -> list[Line]:
    if not 1 <= len(lines) <= MAX_LINES:
        raise invalid("lines", f"between 1 and {MAX_LINES} lines are required")
    parsed = []
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise invalid(f"lines[{i}].quantity", f"quantity must be between 1 and {MAX_LINE_QUANTITY}")
        parsed.append(
            Line(
                uuid_field(f"lines[{i}].product_id", line.product_id),
                _variant(f"lines[{i}].variant_id", line.variant_id),
                line.quantity,
            )
        )
    if len({(line.product_id, line.variant_id) for line in parsed}) != len(parsed):
        raise invalid("lines", "each product and variant may appear only once")
    return parsed


def _wire_variant(variant_id: uuid.UUID) -> str:
    return str(wire_variant(variant_id) or "")


def _wire(line: Line) -> pb.StockLine:
    return pb.StockLine(
        product_id=str(line.product_id), variant_id=_wire_variant(line.variant_id), quantity=line.quantity
    )


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _availability(line: Line, available: int, known: bool) -> pb.LineAvailability:
    wire = _wire(line)
    return pb.LineAvailability(
        product_id=wire.product_id,
        variant_id=wire.variant_id,
        requested=line.quantity,
        available=available,
        sufficient=known and available >= line.quantity,
        known=known,
    )


def reservation(order_id: uuid.UUID, outcome: Outcome) -> pb.ReserveStockResponse:
    return pb.ReserveStockResponse(
        reserved=outcome.reserved,
        reservation_id=str(order_id) if outcome.state else "",
        state=_STATE[outcome.state],
        lines=[_wire(line) for line in outcome.lines],
        expires_at=_iso(outcome.expires_at),
        existing=outcome.existing,
        reason=outcome.reason,
        shortages=[_availability(s.line, s.available, s.known) for s in outcome.shortages],
    )


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.inventory = engine.INVENTORY.of(deps)

    async def CheckStock(
        self, request: pb.CheckStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.CheckStockResponse:
        lines = _lines(request.lines)
        levels = await self.inventory.availability(lines)
        answers = [
            _availability(line, levels.get(key, 0), key in levels)
            for line in lines
            if (key := (line.product_id, line.variant_id))
        ]
        return pb.CheckStockResponse(available=all(a.sufficient for a in answers), lines=answers)

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReserveStockResponse:
        order_id = uuid_field("order_id", request.order_id)
        lines = _lines(request.lines)
        if not 0 <= request.hold_seconds <= 86_400:
            raise invalid("hold_seconds", "hold_seconds must be between 0 and 86400")
        outcome = await self.inventory.reserve(order_id, lines, request.hold_seconds)
        return reservation(order_id, outcome)

    async def ReleaseStock(
        self, request: pb.ReleaseStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseStockResponse:
        order_id = uuid_field("order_id", request.order_id)
        if len(request.reason) > 200:
            raise invalid("reason", "reason must be at most 200 characters")
        moved, state = await self.inventory.release(order_id, request.reason)
        return pb.ReleaseStockResponse(released=moved, state=_STATE[state])

    async def CommitStock(
        self, request: pb.CommitStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitStockResponse:
        committed, state = await self.inventory.commit(uuid_field("order_id", request.order_id))
        return pb.CommitStockResponse(committed=committed, state=_STATE[state])

    async def GetInventory(
        self, request: pb.GetInventoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInventoryResponse:
        if not 1 <= len(request.product_ids) <= 500:
            raise invalid("product_ids", "between 1 and 500 product ids are required")
        ids = [uuid_field(f"product_ids[{i}]", p) for i, p in enumerate(request.product_ids)]
        async with self.deps.db.acquire() as conn:
            rows = await conn.fetch(store.LEVELS_OF_PRODUCTS, ids)
        return pb.GetInventoryResponse(
            items=[
                pb.StockLevel(
                    product_id=str(r["product_id"]),
                    variant_id=_wire_variant(r["variant_id"]),
                    on_hand=r["on_hand"],
                    reserved=r["reserved"],
                    available=r["available"],
                    low_stock_threshold=r["low_stock_threshold"],
                    updated_at=_iso(r["updated_at"]),
                )
                for r in rows
            ]
        )


register = servicer(
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server,
    InventoryServicer,
    pb.DESCRIPTOR.services_by_name["InventoryService"].full_name,
)
