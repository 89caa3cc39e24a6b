"""Web Push (RFC 8030) with aes128gcm payload encryption (RFC 8291) and VAPID (RFC 8292), by pywebpush.

The payload is JSON `{id, template, title, body}`; `id` is the notification's id, also sent as the
`Topic`, so a push service replaces a retry still waiting for an offline device instead of showing both,
and a service worker can drop a duplicate. A 404 or 410 from the push service means the subscription is
gone for good: it is removed and the notification BOUNCED.
"""

from __future__ import annotations

import aiohttp
import asyncpg
import msgspec
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, Vapid01, b64urlencode
from pywebpush import WebPushException, webpush_async

from svc_notify.channels import Retry, Undeliverable, retry_after
from svc_notify.config import NotifyConfig
from svc_notify.preferences import Channel
from svc_notify.queue import Claimed

TIMEOUT = 10.0
_SUBSCRIPTION = "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE id = $1::uuid"
_FORGET = "DELETE FROM push_subscriptions WHERE id = $1::uuid"
_DEV_KEY = "SELECT private_pem FROM dev_vapid_key WHERE id = 1"
_KEEP_DEV_KEY = "INSERT INTO dev_vapid_key (id, private_pem) VALUES (1, $1) ON CONFLICT DO NOTHING"


class PushPayload(msgspec.Struct, rename="camel"):
    id: str
    template: str
    title: str | None
    body: str


async def vapid_key(pool: asyncpg.Pool, config: NotifyConfig) -> Vapid01:
    """The configured VAPID key; in dev and test without one, the key made at first start."""
    if config.vapid_private_key is not None:
        key = config.vapid_private_key.reveal()
        return Vapid.from_pem(key.encode()) if key.startswith("-----BEGIN") else Vapid.from_string(key)
    made = Vapid()
    made.generate_keys()
    # Two processes starting at once both make one; the first stored wins and both use it.
    await pool.execute(_KEEP_DEV_KEY, made.private_pem().decode())
    return Vapid.from_pem((await pool.fetchval(_DEV_KEY)).encode())


def application_server_key(vapid: Vapid01) -> str:
    """The public key a browser passes to `pushManager.subscribe` (base64url, uncompressed point)."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(raw))


class PushSender:
    channel: Channel = "push"

    def __init__(self, pool: asyncpg.Pool, vapid: Vapid01, config: NotifyConfig) -> None:
        self.pool = pool
        self.vapid = vapid
        self.config = config
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))

    async def send(self, row: Claimed) -> str | None:
        subscription = await self.pool.fetchrow(_SUBSCRIPTION, row.recipient)
        if subscription is None:
            raise Undeliverable("BOUNCED", "the push subscription was removed")
        payload = PushPayload(id=str(row.id), template=row.template, title=row.subject, body=row.body)
        try:
            await webpush_async(
                {"endpoint": subscription["endpoint"],
                 "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}},
                msgspec.json.encode(payload).decode(),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.config.vapid_subject},
                ttl=self.config.push_ttl_seconds,
                headers={"Topic": row.id.hex, "Urgency": "normal"},
                aiohttp_session=self._session,
                timeout=TIMEOUT,
            )  # fmt: skip
        except WebPushException as exc:
            status = exc.status_code
            if status in (404, 410):
                await self.pool.execute(_FORGET, row.recipient)
                raise Undeliverable("BOUNCED", f"subscription expired ({status})") from exc
            if status is None or status == 429 or status >= 500:
                raise Retry(str(exc)[:500], retry_after(exc.retry_after)) from exc
            raise Undeliverable("FAILED", str(exc)[:500]) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retry(repr(exc)) from exc
        return None

    async def close(self) -> None:
        await self._session.close()
