"""The senders of each channel, and how a sender tells the dispatcher what became of an attempt.

A sender's `send(row)` returns the provider's message id (or None) once the provider took the message;
it raises `Retry` for a failure worth another attempt (the provider is down, busy or slow) and
`Undeliverable` when no attempt can succeed. Any other exception counts as a `Retry`.
"""

from __future__ import annotations

from typing import Literal, Protocol

from svc_notify.preferences import Channel
from svc_notify.queue import Claimed


class Retry(Exception):
    """Worth another attempt; `after` is the provider's Retry-After in seconds, when it gave one."""

    def __init__(self, error: str, after: float | None = None) -> None:
        super().__init__(error)
        self.after = after


class Undeliverable(Exception):
    """FAILED: the provider refused the message; BOUNCED: the recipient cannot receive it."""

    def __init__(self, status: Literal["FAILED", "BOUNCED"], error: str) -> None:
        super().__init__(error)
        self.status = status


class Sender(Protocol):
    channel: Channel

    async def send(self, row: Claimed) -> str | None: ...

    async def close(self) -> None: ...


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is rare from these providers and ignored)."""
    try:
        return float(value) if value else None
    except ValueError:
        return None
