"""The Redis client: one per process, binary-safe, with short timeouts so an outage fails fast."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=30,
        max_connections=256,
    )
