"""Reservations over the real gRPC server, Redis and PostgreSQL: never oversold, never leaked."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from protos import inventory_pb2 as pb
from svc_inventory import lua
from tests.support import eventually
from tests.svc_inventory.conftest import CALL_TIMEOUT, Stack, books, line, reserve, stocked


async def reserve_retrying(
    stack: Stack, order_id: uuid.UUID, *lines: pb.StockLine
) -> pb.ReserveStockResponse:
    """What a well-behaved caller does: retry UNAVAILABLE (e.g. while Redis is rebuilt) with backoff."""
    for attempt in range(100):
        try:
            return await reserve(stack, order_id, *lines)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            await asyncio.sleep(min(0.01 * 2**attempt, 0.2))
    raise AssertionError("never became available")


async def test_a_flash_sale_sells_exactly_the_stock_every_time(stack: Stack) -> None:
    for _ in range(10):
        product = await stocked(stack, 100)
        answers = await asyncio.gather(*(reserve(stack, uuid.uuid4(), line(product)) for _ in range(2000)))
        assert sum(a.reserved for a in answers) == 100
        assert {a.reason for a in answers if not a.reserved} == {"insufficient_stock"}
        assert await books(stack, product) == books_of(on_hand=100, reserved=100, redis=0, active=100)


def books_of(on_hand: int, reserved: int, redis: int, active: int, committed: int = 0) -> object:
    from tests.svc_inventory.conftest import Books

    return Books(on_hand, reserved, redis, active, committed)


async def test_the_same_order_reserved_fifty_times_at_once_moves_stock_once(stack: Stack) -> None:
    product = await stocked(stack, 10)
    order = uuid.uuid4()
    answers = await asyncio.gather(*(reserve_retrying(stack, order, line(product, 3)) for _ in range(50)))
    assert all(a.reserved and a.state == pb.RESERVED for a in answers)
    assert sum(not a.existing for a in answers) == 1
    assert await books(stack, product) == books_of(on_hand=10, reserved=3, redis=7, active=3)
    moves = await stack.db.fetchval("SELECT count(*) FROM stock_log WHERE order_id = $1", order)
    assert moves == 1
    assert await reserved_events(stack, order) == [(str(product), 3)], "announced once, not per call"


async def reserved_events(stack: Stack, order: uuid.UUID) -> list[tuple[str, int]]:
    """The (product, quantity) of each inventory.reserved event written for `order`, by product."""
    rows = await stack.db.fetch(
        "SELECT e->>'productId' AS product, (e->>'quantity')::int AS quantity"
        " FROM (SELECT convert_from(payload, 'UTF8')::jsonb AS e FROM outbox"
        "       WHERE routing_key = 'inventory.reserved') AS events WHERE e->>'orderId' = $1",
        str(order),
    )
    return sorted((row["product"], row["quantity"]) for row in rows)


async def test_an_order_reserves_all_its_lines_or_none(stack: Stack) -> None:
    plenty, scarce = await stocked(stack, 10), await stocked(stack, 1)
    order = uuid.uuid4()
    refused = await reserve(stack, order, line(plenty, 5), line(scarce, 2))
    assert not refused.reserved and refused.reason == "insufficient_stock"
    assert await reserved_events(stack, order) == []
    assert [(s.product_id, s.available) for s in refused.shortages] == [(str(scarce), 1)]
    assert (await books(stack, plenty)).redis_available == 10
    unknown = await reserve(stack, uuid.uuid4(), line(plenty, 1), line(uuid.uuid4(), 1))
    assert not unknown.reserved and unknown.reason == "unknown_product"
    assert (await books(stack, plenty)) == books_of(on_hand=10, reserved=0, redis=10, active=0)
    both = uuid.uuid4()
    assert (await reserve(stack, both, line(plenty, 4), line(scarce, 1))).reserved
    assert await reserved_events(stack, both) == sorted([(str(plenty), 4), (str(scarce), 1)])


async def test_releases_commits_and_the_sweeper_racing_keep_every_count_exact(stack: Stack) -> None:
    product = await stocked(stack, 1000)
    orders = [uuid.uuid4() for _ in range(100)]
    quantities = {order: 1 + i % 3 for i, order in enumerate(orders)}
    held = await asyncio.gather(*(reserve(stack, o, line(product, quantities[o]), hold=1) for o in orders))
    assert all(h.reserved for h in held)
    await asyncio.sleep(0.9)  # the sweeper starts expiring while the calls below race it

    async def race(order: uuid.UUID, index: int) -> None:
        release = pb.ReleaseStockRequest(order_id=str(order))
        calls = [stack.stub.ReleaseStock(release, timeout=CALL_TIMEOUT) for _ in range(3)]
        if index % 2 == 0:
            commit = pb.CommitStockRequest(order_id=str(order))
            calls.append(stack.stub.CommitStock(commit, timeout=CALL_TIMEOUT))
        await asyncio.gather(*calls)

    await asyncio.gather(*(race(o, i) for i, o in enumerate(orders)))
    states = dict(
        await stack.db.fetch("SELECT order_id, state FROM reservations WHERE order_id = ANY($1)", orders)
    )
    assert set(states.values()) <= {"RELEASED", "COMMITTED", "EXPIRED"}
    assert all(states[o] != "COMMITTED" for i, o in enumerate(orders) if i % 2)
    sold = sum(quantities[o] for o, s in states.items() if s == "COMMITTED")
    assert await books(stack, product) == books_of(
        on_hand=1000 - sold, reserved=0, redis=1000 - sold, active=0, committed=sold
    )
    # Each reservation moved stock exactly twice: once in, once out; a committed one was never released.
    per_order = dict(
        await stack.db.fetch(
            "SELECT order_id, array_agg(kind ORDER BY id) FROM stock_log WHERE order_id = ANY($1) GROUP BY 1",
            orders,
        )
    )
    assert all(len(kinds) == 2 and kinds[0] == "RESERVE" for kinds in per_order.values())
    assert all(per_order[o][1] == "COMMIT" for o, s in states.items() if s == "COMMITTED")


async def test_expired_reservations_give_every_unit_back_within_three_seconds(stack: Stack) -> None:
    product = await stocked(stack, 50)
    began = time.monotonic()
    held = await asyncio.gather(*(reserve(stack, uuid.uuid4(), line(product, 2), hold=2) for _ in range(25)))
    assert all(h.reserved for h in held)
    assert (await books(stack, product)).redis_available == 0

    async def all_back() -> bool:
        b = await books(stack, product)
        return b.redis_available == 50 and b.reserved == 0

    await eventually(all_back, within=3.5)
    assert time.monotonic() - began < 3.5
    expired = await stack.db.fetchval(
        "SELECT count(*) FROM reservations r JOIN reservation_lines l USING (order_id)"
        " WHERE l.product_id = $1 AND r.state = 'EXPIRED'",
        product,
    )
    assert expired == 25


async def test_flushing_redis_mid_sale_oversells_nothing_and_the_service_recovers_by_itself(
    stack: Stack,
) -> None:
    product = await stocked(stack, 100)
    first = await asyncio.gather(*(reserve(stack, uuid.uuid4(), line(product)) for _ in range(150)))
    flush = asyncio.create_task(stack.redis.flushdb())
    rest = await asyncio.gather(*(reserve_retrying(stack, uuid.uuid4(), line(product)) for _ in range(300)))
    await flush
    assert sum(a.reserved for a in (*first, *rest)) == 100
    b = await books(stack, product)
    assert (b.on_hand, b.reserved, b.active_lines) == (100, 100, 100)
    await eventually(lambda: stack.redis.exists("inv:loaded"))
    assert (await books(stack, product)).redis_available == 0


async def test_reconciliation_finds_and_repairs_drift(stack: Stack) -> None:
    product = await stocked(stack, 20)
    assert (await reserve(stack, uuid.uuid4(), line(product, 5))).reserved
    key = f"inv:a:{product}:{uuid.UUID(int=0)}"
    await stack.redis.incrby(key, 7)
    report = await stack.inventory.sync()
    assert report.availability_drift == 1 and report.units_repaired == 7
    assert int(await stack.redis.get(key)) == 15
    again = await stack.inventory.sync()
    assert again.availability_drift == 0


async def test_a_reservation_the_database_never_recorded_is_given_back_by_the_reconciliation(
    stack: Stack,
) -> None:
    product = await stocked(stack, 5)
    order = uuid.uuid4()
    # As if the process died between its Redis step and its PostgreSQL commit.
    entry: list[str | int] = [str(order), str(int(time.time() * 1000) + 60_000)]
    entry += [f"inv:a:{product}:{uuid.UUID(int=0)}", f"inv:g:{product}", 2]
    await stack.inventory.scripts.call("reserve", *lua.reserve_call([entry], "t"))
    assert (await books(stack, product)).redis_available == 3
    report = await stack.inventory.sync()
    assert report.reservation_drift == 1 and report.units_repaired == 2
    assert (await books(stack, product)).redis_available == 5


async def test_release_and_commit_are_idempotent_and_final(stack: Stack) -> None:
    product = await stocked(stack, 10)
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    for order in (kept, dropped):
        assert (await reserve(stack, order, line(product, 2))).reserved
    committed = await stack.stub.CommitStock(pb.CommitStockRequest(order_id=str(kept)))
    assert committed.committed and committed.state == pb.COMMITTED
    late_release = await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(kept), reason="late"))
    assert not late_release.released and late_release.state == pb.COMMITTED
    released = await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(dropped)))
    assert released.released and released.state == pb.RELEASED
    late_commit = await stack.stub.CommitStock(pb.CommitStockRequest(order_id=str(dropped)))
    assert not late_commit.committed and late_commit.state == pb.RELEASED
    again = await reserve(stack, dropped, line(product, 2))
    assert not again.reserved and again.existing and again.state == pb.RELEASED
    assert await books(stack, product) == books_of(on_hand=8, reserved=0, redis=8, active=0, committed=2)
    unknown = await stack.stub.ReleaseStock(pb.ReleaseStockRequest(order_id=str(uuid.uuid4())))
    assert not unknown.released and unknown.state == pb.RESERVATION_STATE_UNSPECIFIED


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            pb.ReserveStockRequest(
                order_id="nope", lines=[pb.StockLine(product_id=str(uuid.uuid4()), quantity=1)]
            ),
            "order_id",
        ),
        (pb.ReserveStockRequest(order_id=str(uuid.uuid4())), "lines"),
        (
            pb.ReserveStockRequest(
                order_id=str(uuid.uuid4()), lines=[pb.StockLine(product_id="x", quantity=1)]
            ),
            "lines[0].product_id",
        ),
        (
            pb.ReserveStockRequest(
                order_id=str(uuid.uuid4()), lines=[pb.StockLine(product_id=str(uuid.uuid4()), quantity=0)]
            ),
            "lines[0].quantity",
        ),
    ],
)
async def test_malformed_reservations_are_invalid_arguments(
    stack: Stack, request_: pb.ReserveStockRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.ReserveStock(request_)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


async def test_check_stock_and_get_inventory_report_the_levels(stack: Stack) -> None:
    product = await stocked(stack, 4)
    assert (await reserve(stack, uuid.uuid4(), line(product, 1))).reserved
    check = await stack.stub.CheckStock(
        pb.CheckStockRequest(lines=[line(product, 3), line(product, 1, variant_id=uuid.uuid4())])
    )
    assert not check.available
    assert [(a.available, a.sufficient, a.known) for a in check.lines] == [(3, True, True), (0, False, False)]
    levels = await stack.stub.GetInventory(pb.GetInventoryRequest(product_ids=[str(product)]))
    (level,) = levels.items
    assert (level.on_hand, level.reserved, level.available) == (4, 1, 3)


async def test_an_overdue_reservation_redis_forgot_is_expired_from_the_database(stack: Stack) -> None:
    product = await stocked(stack, 3)
    order = uuid.uuid4()
    assert (await reserve(stack, order, line(product, 3), hold=1)).reserved
    await stack.redis.zrem("inv:deadlines", str(order))  # the sorted set lost it
    began = time.monotonic()
    # The PostgreSQL safety net (every 5 s, 2 s of grace) finds it, or reconciliation restores its
    # deadline in Redis first; either way it is released, and never before its deadline.
    expected = books_of(on_hand=3, reserved=0, redis=3, active=0)

    async def released() -> bool:
        return await books(stack, product) == expected

    await eventually(released, within=10)
    assert time.monotonic() - began >= 0.9


async def test_one_script_call_serves_a_batch_of_orders_in_turn_each_all_or_nothing(stack: Stack) -> None:
    product, other = await stocked(stack, 5), await stocked(stack, 1)
    rows = {p: (f"inv:a:{p}:{uuid.UUID(int=0)}", f"inv:g:{p}") for p in (product, other)}
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    expiry = str(int(time.time() * 1000) + 60_000)
    batch: list[list[str | int]] = [
        [first, expiry, *rows[product], 3],
        [first, expiry, *rows[product], 3],  # a repeat within the batch finds the first one
        [second, expiry, *rows[product], 2, *rows[other], 2],  # one line short: nothing is taken
        [third, expiry, *rows[product], 2, *rows[other], 1],
    ]
    replies = await stack.inventory.scripts.call("reserve", *lua.reserve_call(batch, "t"))
    assert replies == [[b"OK"], [b"EXISTS", b"RESERVED", expiry.encode()], [b"SHORT", 2, 1], [b"OK"]]
    assert await stack.redis.mget(rows[product][0], rows[other][0]) == [b"0", b"0"]
    assert await stack.redis.zscore("inv:deadlines", third) == int(expiry)
    # Nothing of it reached PostgreSQL: the reconciliation gives the units back.
    report = await stack.inventory.sync()
    assert report.reservation_drift == 2 and report.units_repaired == 6
