"""Create the buyer pool: `count` verified accounts with profiles, straight in auth_db and user_db.

    .venv/bin/python -m perf.load.buyers --count 200

Through svc_auth's and svc_user's own store functions (the account is announced with `user.verified`
like the seed's), with the password hashed once for all of them: a thousand accounts take about a
second, where registering them through the API would cost one argon2 hash, one mail and one
verification each. Idempotent: accounts that exist are left alone, so a pool only ever grows. It runs
with the stack's environment (database URLs), so it fills whatever stack the load run will drive.
"""

from __future__ import annotations

import argparse
import asyncio

from kit import logs, settings
from kit.app import open_database
from perf.load import pool
from svc_auth import accounts, credentials
from svc_auth.app import service as auth_service
from svc_user import store as profiles
from svc_user.app import service as user_service
from svc_user.events import DEFAULT_PREFERENCES


async def prepare(count: int) -> int:
    """Make pool accounts 1..`count` exist; returns how many were new."""
    auth_db = await open_database(auth_service, settings.load(auth_service.name))
    user_db = await open_database(user_service, settings.load(user_service.name))
    try:
        async with auth_db.acquire() as auth, user_db.acquire() as users:
            existing = set(
                await auth.fetchval(
                    "SELECT array_agg(email) FROM users WHERE email = ANY($1::text[])",
                    [pool.email(n) for n in range(1, count + 1)],
                )
                or ()
            )
            missing = [n for n in range(1, count + 1) if pool.email(n) not in existing]
            password_hash = await credentials.hash_password(pool.PASSWORD) if missing else ""
            for number in missing:
                name = f"Load Buyer {number}"
                async with auth.transaction():
                    await accounts.create_account(
                        auth, pool.email(number), password_hash, name, ["User"], verified=True,
                        user_id=pool.user_id(number),
                    )  # fmt: skip
                await profiles.create_profile(
                    users, pool.user_id(number), pool.email(number), name, DEFAULT_PREFERENCES
                )
    finally:
        await auth_db.close()
        await user_db.close()
    return len(missing)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="accounts in the pool (default 200)")
    args = parser.parse_args()
    logs.setup("load-buyers")
    created = asyncio.run(prepare(args.count))
    print(f"buyer pool: {args.count} accounts ({created} new), password {pool.PASSWORD}")


if __name__ == "__main__":
    main()
