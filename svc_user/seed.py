"""Profiles for the dev seed accounts of CONTRACT.md section 3, by their fixed ids.

svc_auth announces the seed accounts with `user.verified` too, but on a fresh broker its relay may
publish those events before svc_user has declared its queue, and RabbitMQ drops a message that no
queue is bound for. Creating the profiles here makes the dev stack complete whatever the start order;
the events that do arrive later are no-ops.
"""

from __future__ import annotations

import logging

import asyncpg

from kit.settings import Settings
from shop.map import seed_user_id
from svc_user import store
from svc_user.app import service
from svc_user.events import DEFAULT_PREFERENCES

__all__ = ["seed", "service"]

log = logging.getLogger(__name__)

SEED_PROFILES = (
    ("admin@shop.local", "Shop Admin"),
    ("seller@shop.local", "Demo Seller"),
    ("user@shop.local", "Demo User"),
)


async def seed(pool: asyncpg.Pool, config: Settings) -> None:
    async with pool.acquire() as conn:
        for email, name in SEED_PROFILES:
            if await store.create_profile(conn, seed_user_id(email), email, name, DEFAULT_PREFERENCES):
                log.info("seeded profile", extra={"email": email})
