"""What tracing costs a checkout: the whole stack with tracing off, sampling 1% and sampling 100%, in turns.

    export SHOP_TEST_NS=perf SHOP_TEST_REDIS_DB=12 SHOP_TEST_PORT_OFFSET=21000
    .venv/bin/python perf/tracing_checkout.py
    .venv/bin/python perf/tracing_checkout.py --rounds 3 --duration 20 --concurrency 16

The stack is the end-to-end tests' (tests/stack.py, as `make run` starts it: every Procfile line, the
dev trace sink among them) in the test corner the variables name, started afresh for each setting, the
settings taking turns round after round, each round starting with the next one, so that load from
elsewhere and the tables' growth hit them alike. Buyers are registered once (perf/checkout_bench.py)
and check out at saturation (`--concurrency` of them, each adding 1..2 products and checking out, as
fast as they can) for `--duration` seconds after a short warm-up. The edge starts every trace (the
bench sends no traceparent), so the sample is decided there and kept by every service after it, as in
production.

Printed per run: checkouts/s, checkout p50/p99, and the CPU per created order of the stack's own
processes and their PostgreSQL backends (the shared Redis and RabbitMQ, the sink and the bench itself
apart), then the medians per setting. The sink's CPU is shown apart: in production the spans go to a
collector on another machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit import settings  # noqa: E402
from perf.checkout_bench import Edge, Shop, Tally, _ms, accounts, measured, saturation  # noqa: E402
from tests import conftest  # noqa: E402  (sets the environment of the namespace)
from tests.stack import OPEN_LIMITS, Stack, running_stack  # noqa: E402

SINK = "devsinks.traces"
# Limits out of reach: a buyer at saturation sends more than the stack's test limit of 600 a minute.
UNLIMITED = {**OPEN_LIMITS, "RATE_LIMIT_USER_PER_MINUTE": "100000000"}
SHARED = ("redis (shared)", "rabbitmq (shared)", "other", "bench client", SINK)


def settings_of(stack_sink: str) -> dict[str, dict[str, str]]:
    ratio = {"OTEL_EXPORTER_OTLP_ENDPOINT": stack_sink, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
    return {
        "off": {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
        "1%": {**ratio, "OTEL_TRACES_SAMPLER_ARG": "0.01"},
        "100%": {**ratio, "OTEL_TRACES_SAMPLER_ARG": "1"},
    }


async def run(
    stack: Stack, tokens: list[str], concurrency: int, duration: float, parts: bool
) -> dict[str, float]:
    users = [b"authorization: Bearer %s\r\ncontent-type: application/json\r\n" % t.encode() for t in tokens]
    shop = Shop(Edge(stack.url("edge")), products=10_000, lines=2)
    await saturation(shop, users, concurrency, 3.0)  # warm up: connections, prices, statements
    tally: Tally
    tally, elapsed, cpu = await measured(
        lambda: saturation(shop, users, concurrency, duration), shop.edge.port
    )
    await shop.edge.client.close()
    orders = max(1, tally.statuses["checkout 201"])
    own = sum(v for part, v in cpu.items() if part not in SHARED)
    if parts:
        print("  ms of CPU per order:", {k: round(v * 1000 / orders, 2) for k, v in sorted(cpu.items())})
    checkouts = tally.latencies["checkout"]
    return {
        "per_s": orders / elapsed,
        "p50": float(_ms(checkouts, 0.5)),
        "p99": float(_ms(checkouts, 0.99)),
        "cpu": own * 1000 / orders,
        "sink": cpu.get(SINK, 0.0) * 1000 / orders,
        "refused": sum(
            n for k, n in tally.statuses.items() if k.startswith("checkout") and k != "checkout 201"
        ),
    }


async def buyers(stack: Stack, count: int) -> list[str]:
    """New buyers' tokens, or none when the stack was too slow to mail one of them its verification
    (a loaded machine): then the caller asks again."""
    try:
        return await accounts(count, stack.url("auth"), stack.url("mailsink"))
    except (AssertionError, httpx.HTTPStatusError) as exc:
        print(f"  buyers not registered ({exc!r}); again", flush=True)
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--parts", action="store_true", help="each part's CPU per order, run by run")
    args = parser.parse_args()
    conftest._reset_vhost()
    tokens: list[str] = []
    figures: dict[str, list[dict[str, float]]] = {}
    print("| setting | round | checkouts/s | p50 ms | p99 ms | stack CPU ms/order | sink CPU ms/order |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as logs:
        for round_ in range(1, args.rounds + 1):
            # Each round starts with the next setting: a drift over the run (the tables grow) hits all.
            turns = list(settings_of(settings.service_url("tracesink")).items())
            for name, env in turns[round_ - 1 :] + turns[: round_ - 1]:
                with running_stack({**UNLIMITED, **env}, Path(logs)) as stack:
                    while not tokens:
                        tokens = asyncio.run(buyers(stack, args.users))
                    found = asyncio.run(run(stack, tokens, args.concurrency, args.duration, args.parts))
                figures.setdefault(name, []).append(found)
                print(
                    f"| {name} | {round_} | {found['per_s']:.0f} | {found['p50']:.1f} | {found['p99']:.1f}"
                    f" | {found['cpu']:.2f} | {found['sink']:.2f} |",
                    flush=True,
                )
    print("\nmedians:")
    for name, runs in figures.items():
        middle = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(
            f"| {name} | {middle['per_s']:.0f}/s | p50 {middle['p50']:.1f} ms | p99 {middle['p99']:.1f} ms"
            f" | {middle['cpu']:.2f} ms CPU/order | sink {middle['sink']:.2f}"
            f" | not 201: {middle['refused']:.0f} |"
        )


if __name__ == "__main__":
    main()
