"""svc_notify's own settings, read once at start from its `NOTIFY_*` variables (kit.settings `extra`).

Per channel (`EMAIL`, `SMS`, `PUSH`), so a burst of events never floods a provider:

    NOTIFY_<CHANNEL>_CONCURRENCY    sends in flight per process (email 8, sms 4, push 16)
    NOTIFY_<CHANNEL>_RATE           sends per second per process (email 20, sms 10, push 50)
    NOTIFY_<CHANNEL>_MAX_ATTEMPTS   attempts before FAILED (6)
    NOTIFY_<CHANNEL>_RETRY_SECONDS  first retry delay, doubled each time, jittered (email 30, others 10)

and `NOTIFY_RETRY_CAP_SECONDS` (3600, the longest wait between attempts), `NOTIFY_DEFAULT_LOCALE` (en:
the language of users whose preferences we have not heard of, and of the verification mail),
`NOTIFY_PUSH_TTL_SECONDS` (86400, how long a push service keeps a push for an offline device),
`NOTIFY_PUSH_HOSTS` (comma-separated host suffixes a subscription's endpoint may point at outside dev:
the browsers' push services by default, so a registered "subscription" cannot make svc_notify POST to
any address it can reach).
Web Push: `NOTIFY_VAPID_PRIVATE_KEY` (PEM, or base64url of the raw key or its DER) and
`NOTIFY_VAPID_SUBJECT` (a mailto: or https: contact for the push services); in dev and test a key is
made at first start and kept in notification_db, never committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kit.settings import Secret, Settings
from svc_notify.preferences import CHANNELS, LOCALES, Channel

_DEFAULTS: dict[Channel, tuple[int, float, float]] = {
    # concurrency, rate per second, first retry delay
    "email": (8, 20.0, 30.0),
    "sms": (4, 10.0, 10.0),
    "push": (16, 50.0, 10.0),
}


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    concurrency: int
    rate_per_second: float
    max_attempts: int
    retry_seconds: float
    retry_cap_seconds: float


# The push services of Chrome, Firefox, Edge/Windows and Safari.
PUSH_HOSTS = ("fcm.googleapis.com", "push.services.mozilla.com", "notify.windows.com", "push.apple.com")


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    policies: Mapping[Channel, ChannelPolicy]
    default_locale: str
    push_ttl_seconds: int
    vapid_private_key: Secret | None
    vapid_subject: str
    # None: any endpoint (dev and test, where the push sink is on loopback).
    push_hosts: tuple[str, ...] | None


def _number(extra: Mapping[str, str], name: str, default: float) -> float:
    raw = extra.get(name)
    try:
        value = default if raw in (None, "") else float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"environment variable {name} must be positive, got {raw!r}")
    return value


def load(settings: Settings) -> NotifyConfig:
    extra = settings.extra
    cap = _number(extra, "NOTIFY_RETRY_CAP_SECONDS", 3600)
    policies = {}
    for channel in CHANNELS:
        concurrency, rate, retry = _DEFAULTS[channel]
        prefix = f"NOTIFY_{channel.upper()}_"
        policies[channel] = ChannelPolicy(
            concurrency=int(_number(extra, prefix + "CONCURRENCY", concurrency)),
            rate_per_second=_number(extra, prefix + "RATE", rate),
            max_attempts=int(_number(extra, prefix + "MAX_ATTEMPTS", 6)),
            retry_seconds=_number(extra, prefix + "RETRY_SECONDS", retry),
            retry_cap_seconds=cap,
        )
    locale = extra.get("NOTIFY_DEFAULT_LOCALE") or "en"
    if locale not in LOCALES:
        raise ValueError(f"NOTIFY_DEFAULT_LOCALE must be one of {', '.join(LOCALES)}, got {locale!r}")
    key = extra.get("NOTIFY_VAPID_PRIVATE_KEY")
    if not key and not settings.is_dev:
        raise ValueError("NOTIFY_VAPID_PRIVATE_KEY must be set outside dev and test")
    return NotifyConfig(
        policies=policies,
        default_locale=locale,
        push_ttl_seconds=int(_number(extra, "NOTIFY_PUSH_TTL_SECONDS", 86400)),
        vapid_private_key=Secret(key) if key else None,
        vapid_subject=extra.get("NOTIFY_VAPID_SUBJECT") or "mailto:no-reply@shop.local",
        push_hosts=_push_hosts(extra.get("NOTIFY_PUSH_HOSTS"), settings.is_dev),
    )


def _push_hosts(raw: str | None, dev: bool) -> tuple[str, ...] | None:
    if raw:
        return tuple(host.strip().lower() for host in raw.split(",") if host.strip())
    return None if dev else PUSH_HOSTS


def push_host_allowed(config: NotifyConfig, host: str) -> bool:
    """Whether an endpoint on `host` is one of the allowed push services (the host or a subdomain)."""
    if config.push_hosts is None:
        return True
    host = host.lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in config.push_hosts)
