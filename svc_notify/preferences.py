"""Which channels a user wants for a kind of message, from the preferences svc_user announces.

The document is svc_user's (`user.preferences.updated`): channel switches (`email`, `sms`, `push`), then
per kind of message (`orderUpdates`, `payment`, `security`, `marketing`) which channels it may use; a
channel is used only when both allow it. Security messages always go by email; marketing needs consent.
A user svc_user has not told us about gets svc_user's defaults: email only.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Channel = Literal["email", "sms", "push"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push")
# Each kind of message (its wire name in the preferences) and the attribute that holds its channels.
KINDS = {
    "orderUpdates": "order_updates",
    "payment": "payment",
    "security": "security",
    "marketing": "marketing",
}
LOCALES = ("en", "vi")
FALLBACK_LOCALE = "en"


class Channels(msgspec.Struct, rename="camel"):
    email: bool = True
    sms: bool = True
    push: bool = True


class Notifications(msgspec.Struct, rename="camel"):
    email: bool = True
    sms: bool = False
    push: bool = False
    order_updates: Channels = msgspec.field(default_factory=Channels)
    payment: Channels = msgspec.field(default_factory=Channels)
    security: Channels = msgspec.field(default_factory=Channels)
    marketing: Channels = msgspec.field(default_factory=Channels)


class Preferences(msgspec.Struct, rename="camel"):
    language: str | None = None
    notifications: Notifications = msgspec.field(default_factory=Notifications)
    marketing_consent: bool = False


_decoder = msgspec.json.Decoder(Preferences)
DEFAULTS = Preferences()


def decode(document: str | None) -> Preferences:
    return DEFAULTS if document is None else _decoder.decode(document)


def wanted_channels(preferences: Preferences, kind: str) -> list[Channel]:
    """The channels a message of `kind` may use for a user with `preferences`, in CHANNELS order."""
    switches = preferences.notifications
    per_kind: Channels = getattr(switches, KINDS[kind])
    if kind == "marketing" and not preferences.marketing_consent:
        return []
    wanted = [c for c in CHANNELS if getattr(switches, c) and getattr(per_kind, c)]
    if kind == "security" and "email" not in wanted:
        wanted.insert(0, "email")
    return wanted


def locale_of(preferences: Preferences, default: str) -> str:
    language = preferences.language
    return language if language in LOCALES else default
