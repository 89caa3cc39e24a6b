"""The load suite's unit tests import locust for its classes only: without this, importing it would
monkey-patch the whole test process for gevent, under every asyncio test that runs after."""

import os

os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")
