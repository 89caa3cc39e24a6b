"""The dev seed: `python -m shop.seed` runs the `seed.py` of every service of the map that has one.

A seed module defines `service` (its `kit.app.Service`) and `async def seed(pool, config)`. Seeds are
idempotent (a second run adds nothing) and publish through the outbox like any other change; the
service's relay sends those events once it runs. Cross-service references use the fixed ids of
`shop.map` (`seed_user_id`, `demo_product_id`), so no seed has to ask another service anything.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging

from kit import logs, settings
from kit.app import open_database
from shop.map import services_with_a_database

log = logging.getLogger(__name__)


def seed_modules() -> list[str]:
    """`svc_<name>.seed` for every service that has one; svc_auth first, as the others refer to it."""
    found = [f"svc_{spec.name}.seed" for spec in services_with_a_database()]
    found = [name for name in found if importlib.util.find_spec(name) is not None]
    return sorted(found, key=lambda name: name != "svc_auth.seed")


async def run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    config = settings.load(module.service.name).direct()
    pool = await open_database(module.service, config)
    try:
        await module.seed(pool, config)
    finally:
        await pool.close()
    log.info("seeded", extra={"seedModule": module_name})


async def main() -> None:
    for module_name in seed_modules():
        await run(module_name)


if __name__ == "__main__":
    logs.setup("seed")
    asyncio.run(main())
