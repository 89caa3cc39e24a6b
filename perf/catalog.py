"""Catalog benchmark against a running stack: product detail (hot cache), cached list pages, uncached search,
uncached search with every facet, cached suggestions.

    .venv/bin/python perf/catalog.py                      # through the edge (EDGE_URL or 127.0.0.1:5010)
    .venv/bin/python perf/catalog.py --direct             # straight to svc_product (PRODUCT_URL or :5004)
    .venv/bin/python perf/catalog.py --duration 10 --only detail
    .venv/bin/python perf/catalog.py --direct --only detail --header 'Accept-Encoding: gzip'

Each scenario runs twice with wrk: at saturation (as fast as `--connections` allow) and at a fixed
request rate (each connection paced by wrk's `delay()` hook, so the rate is an upper bound: a connection
waiting on a slow answer sends late; the achieved rate is reported next to the target). wrk's own Lua
`done()` prints requests/s and the p50/p95/p99 latencies as JSON, collected here into a Markdown table.

- detail: `GET /api/products/{id}` over `--hot` demo products, warmed first (every answer a cache hit;
  the stock figure comes from the process's few-second memo).
- list: `GET /api/products?...` over category x page x sort combinations, warmed first.
- search: `GET /api/products?search=<prefix>&maxPrice=<random>`: the random bound (far above any price)
  changes nothing in the answer but makes every request a distinct query, so none is served from the
  cache: each one runs the full-text and trigram search in PostgreSQL.
- facets: the same searches (some with typos) with `facets=` all five, a category filter on every other
  one, and the random bound: every request reads the page and counts every facet in PostgreSQL.
- suggest: `GET /api/products/suggest?q=` over every prefix of the search words and the brand names
  (what a search box sends while someone types), warmed first: the cached answer per prefix.

Needs `wrk` (apt-get install wrk) and the demo catalog (`make run` seeds it). An edge with rate limits
must have them raised (`RATE_LIMIT_IP_PER_HOUR`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kit import settings  # noqa: E402

SEARCH_WORDS = (
    "lapt", "phone", "shirt", "cafe", "lamp", "yoga", "tent", "novel", "rice", "sneak", "dress", "desk",
    "helm", "perf", "puzz", "knife", "tablet", "monit", "jack", "boot", "pan", "chair", "rug", "vase",
    "da lat", "hoi an", "premium lapt", "eco lamp", "classic", "smart", "aptop", "ttle",
)  # fmt: skip
# One or two letters wrong: read through the catalog's vocabulary (svc_product.typos).
TYPOS = ("smrtphone", "laptpo", "hedphones", "sneekers", "moisturiser", "bicycel", "notebok", "umbrela")
FACETS = "category,brand,price,rating,attributes,stock"
# Targets of the catalog issue on a 2-core machine (requests/s at the fixed rate; p99 in ms).
TARGETS = {
    "detail": (12_000, 10.0),
    "list": (8_000, None),
    "search": (1_000, 20.0),
    "facets": (500, 50.0),
    "suggest": (1_000, 10.0),
}

_LUA = """
local paths = {%(paths)s}
local pace = %(pace)f
local unique = %(unique)s
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
  counter = counter + 1
  local path = paths[(counter %% #paths) + 1]
  if unique then
    path = path .. "&maxPrice=" .. string.format("%%.0f", 100000000000 + math.random(1, 899999999) * 1000)
  end
  return wrk.format("GET", path)
end

if pace > 0 then
  function delay()
    return pace
  end
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "errors": %%d, "p50": %%f, "p95": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class Result:
    scenario: str
    mode: str
    target: int | None
    rate: float
    p50: float
    p95: float
    p99: float
    errors: int


def _lua_string(text: str) -> str:
    return json.dumps(text)


def run_wrk(
    base: str,
    paths: list[str],
    *,
    duration: int,
    connections: int,
    threads: int,
    rate: int | None,
    unique: bool,
    headers: list[str] | None = None,
) -> dict[str, float]:
    """One wrk run; `rate` paces the connections to about that many requests a second in total."""
    pace = connections * 1000.0 / rate if rate else 0.0
    script = _LUA % {
        "paths": ", ".join(map(_lua_string, paths)),
        "pace": pace,
        "unique": "true" if unique else "false",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
            "-s", handle.name, base,
        ]  # fmt: skip
        for header in headers or []:
            command += ["-H", header]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(handle.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    result["rate"] = result["requests"] / result["seconds"]
    return result


def workload(client: httpx.Client, hot: int) -> dict[str, tuple[list[str], bool]]:
    """(paths, unique) per scenario, from the running catalog; detail and list paths are warmed."""
    ids: list[str] = []
    for page in itertools.count(1):
        found = client.get("/api/products", params={"pageSize": 100, "page": page, "fields": "id"}).json()
        ids += [item["id"] for item in found["items"]]
        if len(ids) >= hot or not found["items"]:
            break
    if len(ids) < hot:
        raise SystemExit(f"only {len(ids)} products: seed the demo catalog first (make run)")
    details = [f"/api/products/{product_id}" for product_id in ids[:hot]]
    categories = [top["id"] for top in client.get("/api/categories").json()]
    lists = [
        f"/api/products?categoryId={category}&page={page}&sortBy={sort}"
        for category, page, sort in itertools.product(categories, (1, 2, 3), ("price", "rating", "createdAt"))
    ]
    lists += [f"/api/products?page={page}" for page in range(1, 11)]
    for path in details + lists:
        assert client.get(path).status_code == 200, path
    searches = [f"/api/products?search={word.replace(' ', '+')}&pageSize=20" for word in SEARCH_WORDS]
    faceted = [
        f"/api/products?search={word.replace(' ', '+')}&facets={FACETS}"
        + (f"&categoryId={categories[n % len(categories)]}" if n % 2 else "")
        for n, word in enumerate(SEARCH_WORDS + TYPOS)
    ]
    brands = [brand["name"].lower() for brand in client.get("/api/brands").json()]
    typed = {text[:n] for text in SEARCH_WORDS + tuple(brands) for n in range(1, len(text) + 1)}
    suggestions = [f"/api/products/suggest?q={quote_plus(text)}" for text in sorted(typed)]
    for path in suggestions:
        assert client.get(path).status_code == 200, path
    return {
        "detail": (details, False),
        "list": (lists, False),
        "search": (searches, True),
        "facets": (faceted, True),
        "suggest": (suggestions, False),
    }


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | mode | target req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = f"{r.target:,}" if r.target else "-"
        lines.append(
            f"| {r.scenario} | {r.mode} | {target} | {r.rate:,.0f} | {r.p50:.2f} | {r.p95:.2f} | {r.p99:.2f}"
            f" | {r.errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--direct", action="store_true", help="hit svc_product, not the edge")
    parser.add_argument("--base", help="base URL (default: the edge, or svc_product with --direct)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="connections at saturation (default 64)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: leave cores to servers)"
    )
    parser.add_argument("--hot", type=int, default=500, help="distinct products in the detail run (500)")
    parser.add_argument("--only", choices=sorted(TARGETS), action="append", help="run only these scenarios")
    parser.add_argument(
        "--rate", action="append", default=[], metavar="SCENARIO=N", help="fixed rate other than the target"
    )
    parser.add_argument(
        "--header", action="append", default=[], help="request header, e.g. 'Accept-Encoding: gzip'"
    )
    parser.add_argument("--saturation-only", action="store_true", help="skip the fixed-rate runs")
    args = parser.parse_args()
    rates = {name: target for name, (target, _) in TARGETS.items()}
    for override in args.rate:
        name, _, value = override.partition("=")
        rates[name] = int(value)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    base = args.base or settings.service_url("product" if args.direct else "edge")
    with httpx.Client(base_url=base, timeout=10) as client:
        scenarios = workload(client, args.hot)
    results = []
    for name in args.only or list(TARGETS):
        paths, unique = scenarios[name]
        modes = [("saturation", None, args.connections), ("fixed rate", rates[name], 32)]
        for mode, rate, connections in modes[:1] if args.saturation_only else modes:
            measured = run_wrk(
                base, paths, duration=args.duration, connections=connections, threads=args.threads, rate=rate,
                unique=unique, headers=args.header,
            )  # fmt: skip
            m = measured
            results.append(
                Result(name, mode, rate, m["rate"], m["p50"], m["p95"], m["p99"], int(m["errors"]))
            )
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print(f"\n{base}, {args.duration} s per run\n")
    print(table(results))


if __name__ == "__main__":
    main()
