"""Two instances each of svc_order, svc_inventory and svc_payment behind the edge, pooled through
PgBouncer (`SCALE_<SERVICE>=2 PGBOUNCER=1`, as `make run` takes them): checkouts spread over both, one
instance is killed mid-sale, and still no unit is oversold, no Idempotency-Key orders twice and no
event has a second effect."""

from __future__ import annotations

import asyncio
import collections
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop.map import SERVICES
from tests.conftest import PORT_OFFSET
from tests.faults.conftest import Servers
from tests.faults.shop import Shop, buyer, shop_of
from tests.servers import own_postgres
from tests.stack import Stack, running_stack
from tests.support import eventually

SCALED = ("order", "inventory", "payment")
UNITS, BUYERS = 30, 40


@pytest.fixture(scope="module")
async def scaled_env(servers: Servers) -> AsyncIterator[dict[str, str]]:
    env = servers.environment(corner=1, amqp_url=await servers.rabbitmq.vhost("scaled"))
    env.update({f"SCALE_{name.upper()}": "2" for name in SCALED})
    # A PostgreSQL of its own, reached through PgBouncer (sessions straight to it).
    async with own_postgres(5432 + PORT_OFFSET + 2) as server:
        bouncer = 6432 + PORT_OFFSET + 2
        env.update({"PGBOUNCER": "1", "PGBOUNCER_PORT": str(bouncer), "POSTGRES_URL": server.url})
        for spec in SERVICES.values():
            if spec.database:
                env[f"{spec.name.upper()}_DATABASE_URL"] = (
                    f"postgresql://postgres@127.0.0.1:{bouncer}/{spec.database}"
                )
                env[f"{spec.name.upper()}_DATABASE_DIRECT_URL"] = f"{server.url}/{spec.database}"
        yield env


@pytest.fixture(scope="module")
def scaled_stack(scaled_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("scaled-stack")
    with running_stack(scaled_env, logs) as running:
        yield running


@pytest.fixture(scope="module")
async def scaled_shop(scaled_stack: Stack) -> AsyncIterator[Shop]:
    async with shop_of(scaled_stack) as shopper:
        yield shopper


def second_instance_port(env: dict[str, str], name: str) -> int:
    return int(env[f"{name.upper()}_PORT"]) + 20


def instance_process(stack: Stack, name: str, port: int) -> psutil.Process:
    """The main process of the instance of `name` serving `port`."""
    for child in psutil.Process(stack.supervisor.pid).children():
        if child.environ().get(f"{name.upper()}_PORT") == str(port):
            return child
    raise LookupError(f"no {name} on port {port}")


async def checkouts_served(url: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "shop_http_requests_total"
        and sample.labels.get("route") == "/api/orders/checkout"
        and sample.labels.get("status") in ("201", "422")
    )


async def test_two_instances_share_checkouts_and_survive_one_being_killed(
    scaled_shop: Shop, scaled_stack: Stack, scaled_env: dict[str, str]
) -> None:
    shop, env = scaled_shop, scaled_env
    for name in SCALED:
        port = second_instance_port(env, name)
        async with httpx.AsyncClient(timeout=5) as client:
            await eventually(lambda port=port: _ready(client, port), within=30)
    product = await shop.product(units=UNITS)
    buyers = [buyer(env) for _ in range(BUYERS)]
    await asyncio.gather(*(shop.fill(who, product) for who in buyers))
    answered: collections.Counter[int] = collections.Counter()

    async def shopper(who: dict[str, str]) -> str | None:
        key = str(uuid.uuid4())
        for _ in range(100):
            answer = await shop.checkout(who, key=key)
            answered[answer.status_code] += 1
            if answer.status_code in (201, 422):
                return answer.json()["orderId"] if answer.status_code == 201 else None
            assert answer.status_code in (502, 503), answer.text
            await asyncio.sleep(0.2)
        raise AssertionError("no answer")

    first_half = await asyncio.gather(*(shopper(who) for who in buyers[: BUYERS // 2]))
    urls = [
        f"http://127.0.0.1:{int(env['ORDER_PORT'])}",
        f"http://127.0.0.1:{second_instance_port(env, 'order')}",
    ]
    spread = [await checkouts_served(url) for url in urls]
    assert all(count > 0 for count in spread), spread

    victim = instance_process(scaled_stack, "order", second_instance_port(env, "order"))
    for process in (*victim.children(), victim):
        process.send_signal(signal.SIGKILL)
    second_half = await asyncio.gather(*(shopper(who) for who in buyers[BUYERS // 2 :]))

    won = [order for order in first_half + second_half if order]
    level = await eventually(lambda: _reserved(shop, product, len(won)), within=30, interval=0.2)
    await eventually(lambda: _payments(shop, won), within=30, interval=0.2)
    payments = await shop.rows(
        "payment",
        "SELECT order_id FROM payments WHERE order_id = ANY($1::uuid[])",
        [uuid.UUID(o) for o in won],
    )
    print(
        f"\ntwo instances of {', '.join(SCALED)}: checkouts per order instance before the kill {spread};"
        f" answers {dict(answered)}; {len(won)} of {BUYERS} buyers won {UNITS} units; stock {level};"
        f" {len(payments)} payments; through PgBouncer"
    )
    assert len(won) == len(set(won)) == UNITS  # all sold, none twice, no key ordered twice
    assert level == {"onHand": UNITS, "reserved": UNITS, "available": 0}
    assert len(payments) == UNITS  # order.created handled once, by either payment instance


async def _ready(client: httpx.AsyncClient, port: int) -> bool:
    try:
        return (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def _reserved(shop: Shop, product: str, count: int) -> dict[str, int] | None:
    level = await shop.stock(product)
    return level if level["reserved"] == count else None


async def _payments(shop: Shop, orders: list[str]) -> bool:
    return all(await asyncio.gather(*(shop.payment_exists(order) for order in orders)))
