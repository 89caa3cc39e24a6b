"""Search, facets and suggestions measured through the edge of a stack of their own (`make perf-search`).

    SHOP_TEST_NS=perf SHOP_TEST_REDIS_DB=12 SHOP_TEST_PORT_OFFSET=21000 .venv/bin/python perf/search_stack.py

The stack is the end-to-end tests' (tests/stack.py: migrations, the demo catalog of 10,000 products,
every Procfile line) in the test corner the variables name (databases `*_<ns>`, that Redis database,
the vhost `shop_<ns>`, ports shifted by the offset), so it runs beside `make run` and the tests. Then
perf/catalog.py runs its search, facets and suggest scenarios against its edge; any other argument is
passed on (`--duration 5`, `--only suggest`, `--rate facets=300`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import conftest  # noqa: E402  (sets the environment of the namespace)
from tests.stack import OPEN_LIMITS, running_stack  # noqa: E402

SCENARIOS = ("search", "facets", "suggest")


def main() -> None:
    conftest._reset_vhost()
    passed = sys.argv[1:]
    only = [] if "--only" in passed else [arg for name in SCENARIOS for arg in ("--only", name)]
    # The search index (on by default, README "Search"); PRODUCT_SEARCH_INDEX=0 measures PostgreSQL.
    env = {**OPEN_LIMITS, "PRODUCT_SEARCH_INDEX": os.environ.get("PRODUCT_SEARCH_INDEX", "1")}
    with tempfile.TemporaryDirectory() as logs, running_stack(env, Path(logs)) as stack:
        command = [sys.executable, str(ROOT / "perf" / "catalog.py"), "--base", stack.url("edge"), *only]
        subprocess.run([*command, *passed], check=True)


if __name__ == "__main__":
    main()
