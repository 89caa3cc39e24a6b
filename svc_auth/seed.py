"""The dev seed accounts of CONTRACT.md section 3, verified and ready to log in."""

from __future__ import annotations

import logging

import asyncpg

from kit.settings import Settings
from shop.map import seed_user_id
from svc_auth import accounts, credentials
from svc_auth.app import service

__all__ = ["seed", "service"]

log = logging.getLogger(__name__)

SEED_ACCOUNTS = (
    ("admin@shop.local", "Admin123!", "Shop Admin", ["Admin"]),
    ("seller@shop.local", "Seller123!", "Demo Seller", ["Seller"]),
    ("user@shop.local", "User123!", "Demo User", ["User"]),
)


async def seed(pool: asyncpg.Pool, config: Settings) -> None:
    async with pool.acquire() as conn:
        for email, password, name, roles in SEED_ACCOUNTS:
            if await conn.fetchval("SELECT 1 FROM users WHERE email = $1", email):
                continue
            password_hash = await credentials.hash_password(password)
            async with conn.transaction():
                await accounts.create_account(
                    conn, email, password_hash, name, roles, verified=True, user_id=seed_user_id(email)
                )
            log.info("seeded account", extra={"email": email})
