"""`make perf-search` of two source trees, taking turns, for a before/after on a machine others share.

    .venv/bin/python perf/search_ab.py /tmp/before . --rounds 2 -- --only facets --only suggest

Each tree is a checkout with its generated files (`git archive main | tar -x -C /tmp/before`, then the
gRPC stubs of protos/ and edge/_native copied in). Round after round, each tree's perf/search_stack.py
starts a stack of its own in its own corner (the first tree in `SHOP_TEST_NS`'s with a `b` added,
Redis database `--other-redis-db`, ports `--other-offset`; the second in the caller's), runs its
scenarios through its edge and stops it, so the load of others falls on both alike. Prints each run's
table with the machine's load average before and after it; what follows `--` goes to perf/catalog.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--other-redis-db", default="6")
    parser.add_argument("--other-offset", default="23500")
    args, passed = parser.parse_known_args()
    passed = [arg for arg in passed if arg != "--"]
    namespace = os.environ.get("SHOP_TEST_NS", "perf")
    corners = {
        args.before: {
            "SHOP_TEST_NS": f"{namespace}b",
            "SHOP_TEST_REDIS_DB": args.other_redis_db,
            "SHOP_TEST_PORT_OFFSET": args.other_offset,
        },
        args.after: {},
    }
    for round_number in range(1, args.rounds + 1):
        for tree, corner in corners.items():
            load = os.getloadavg()[0]
            run = subprocess.run(
                [sys.executable, str(tree / "perf" / "search_stack.py"), *passed],
                cwd=tree,
                env={**os.environ, **corner},
                capture_output=True,
                text=True,
                check=True,
            )
            table = run.stdout[run.stdout.index("| scenario") :]
            print(f"\n### round {round_number}, {tree} (load {load:.1f} -> {os.getloadavg()[0]:.1f})\n")
            print(table, flush=True)


if __name__ == "__main__":
    main()
