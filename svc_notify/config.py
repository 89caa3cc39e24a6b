"""svc_notify's own settings, read once at start with kit's (`Service.settings`) from its `NOTIFY_*`
variables and Twilio's (svc_notify.twilio).

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

from kit.settings import Env, OwnSettings, Secret
from svc_notify.preferences import CHANNELS, LOCALES, Channel
from svc_notify.twilio import TwilioConfig

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
class NotifyConfig(OwnSettings):
    policies: Mapping[Channel, ChannelPolicy]
    default_locale: str
    push_ttl_seconds: int
    vapid_private_key: Secret | None
    vapid_subject: str
    # None: any endpoint (dev and test, where the push sink is on loopback).
    push_hosts: tuple[str, ...] | None
    twilio: TwilioConfig

    @classmethod
    def read(cls, env: Env) -> NotifyConfig:
        cap = env.number("NOTIFY_RETRY_CAP_SECONDS", 3600, positive=True)
        policies = {}
        for channel in CHANNELS:
            concurrency, rate, retry = _DEFAULTS[channel]
            prefix = f"NOTIFY_{channel.upper()}_"
            policies[channel] = ChannelPolicy(
                concurrency=int(env.number(prefix + "CONCURRENCY", concurrency, positive=True)),
                rate_per_second=env.number(prefix + "RATE", rate, positive=True),
                max_attempts=int(env.number(prefix + "MAX_ATTEMPTS", 6, positive=True)),
                retry_seconds=env.number(prefix + "RETRY_SECONDS", retry, positive=True),
                retry_cap_seconds=cap,
            )
        locale = env.text("NOTIFY_DEFAULT_LOCALE", "en")
        if locale not in LOCALES:
            raise ValueError(f"NOTIFY_DEFAULT_LOCALE must be one of {', '.join(LOCALES)}, got {locale!r}")
        hosts = tuple(host.lower() for host in env.items("NOTIFY_PUSH_HOSTS"))
        key = env.text("NOTIFY_VAPID_PRIVATE_KEY")
        if not key and not env.is_dev:
            raise ValueError("NOTIFY_VAPID_PRIVATE_KEY must be set outside dev and test")
        return cls(
            policies=policies,
            default_locale=locale,
            push_ttl_seconds=int(env.number("NOTIFY_PUSH_TTL_SECONDS", 86400, positive=True)),
            vapid_private_key=Secret(key) if key else None,
            vapid_subject=env.text("NOTIFY_VAPID_SUBJECT", "mailto:no-reply@shop.local"),
            push_hosts=hosts or (None if env.is_dev else PUSH_HOSTS),
            twilio=TwilioConfig.read(env),
        )


def push_host_allowed(config: NotifyConfig, host: str) -> bool:
    """Whether an endpoint on `host` is one of the allowed push services (the host or a subdomain)."""
    if config.push_hosts is None:
        return True
    host = host.lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in config.push_hosts)
