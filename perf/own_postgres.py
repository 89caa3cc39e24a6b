"""A PostgreSQL server of its own for perf runs, held until SIGTERM or Ctrl-C (tests/servers.py's).

    .venv/bin/python perf/own_postgres.py 26932 &     # prints its URL and data folder
    POSTGRES_URL=postgresql://postgres@127.0.0.1:26932 make perf-search ...

On a machine whose shared server others fill up (`too many clients`), a perf run measures itself.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import own_postgres


async def main(port: int) -> None:
    async with own_postgres(port) as server:
        print(server.url, server.data, flush=True)
        stop = asyncio.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
