"""The dev seed: `python -m kit.seed` runs every `svc_*/seed.py` of the repository.

A seed module defines `service` (its `kit.app.Service`) and `async def seed(pool, config)`. Seeds are
idempotent (a second run adds nothing) and publish through the outbox like any other change; the
service's relay sends those events once it runs. Cross-service references use the fixed ids below, so
no seed has to ask another service anything.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid
from pathlib import Path

from kit import logs, settings
from kit.app import open_database

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


def seed_user_id(email: str) -> uuid.UUID:
    """The fixed id of a seed account (admin@shop.local, seller@shop.local, user@shop.local)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-seed-user:{email}")


def demo_product_id(number: int) -> uuid.UUID:
    """The fixed id of demo product `number` (1-based) of the demo catalog."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shop-demo-product:{number}")


def seed_modules() -> list[str]:
    """`svc_<name>.seed` for every service that has one; svc_auth first, as the others refer to it."""
    found = sorted(p.parent.name for p in ROOT.glob("svc_*/seed.py"))
    return [f"{name}.seed" for name in sorted(found, key=lambda n: n != "svc_auth")]


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
