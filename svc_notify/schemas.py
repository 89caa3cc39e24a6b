"""Requests and responses of svc_notify, camelCase on the wire."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from kit.http import Model

ChannelName = Literal["email", "sms", "push"]
Locale = Literal["en", "vi"]


class Notification(Model):
    """One delivery to the caller. The verification link is redacted: the mail itself is the only copy."""

    id: uuid.UUID
    channel: str
    recipient: str
    template: str
    subject: str | None
    body: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class AdminNotification(Model):
    """A delivery with its tracking, as the Admin search shows it."""

    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    channel: str
    recipient: str
    template: str
    template_version: int | None
    locale: str
    subject: str | None
    body: str
    status: str
    attempts: int
    provider_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class TemplateEdit(Model):
    """A new version of one variant of a template; `subject` is the mail's subject or the push's title."""

    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    channel: ChannelName = "email"
    locale: Locale = "en"
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None

    def __post_init__(self) -> None:
        if self.channel == "sms":
            if self.subject is not None:
                raise ValueError("subject: an SMS has no subject")
            return
        if self.subject is None:
            raise ValueError(f"subject: required for {self.channel}")
        # A line break in a header would let an edited subject inject headers of its own.
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError("subject: must be a single line")


class SmsLength(Model):
    encoding: str
    characters: int
    segments: int


class Variant(Model):
    channel: str
    locale: str
    version: int
    subject: str | None
    body: str | None  # None in the history: that version retired the variant
    created_at: datetime
    sms: SmsLength | None = None


class Template(Model):
    name: str
    kind: str
    channels: list[str]
    placeholders: list[str]
    variants: list[Variant]


class TemplateSummary(Model):
    name: str
    kind: str
    channels: list[str]
    placeholders: list[str]


class PreviewRequest(Model):
    channel: ChannelName = "email"
    locale: Locale = "en"
    # Values to render with; any placeholder left out takes its sample value.
    values: dict[str, Annotated[str, msgspec.Meta(max_length=2_000)]] = msgspec.field(default_factory=dict)


class Preview(Model):
    name: str
    channel: str
    locale: str  # the variant's: `en` when the asked locale has none
    version: int
    subject: str | None
    body: str
    sms: SmsLength | None


def _b64url_bytes(field: str, value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{field}: must be base64url") from None


class SubscriptionKeys(Model):
    p256dh: Annotated[str, msgspec.Meta(max_length=200)]
    auth: Annotated[str, msgspec.Meta(max_length=100)]

    def __post_init__(self) -> None:
        # RFC 8291: an uncompressed P-256 point and a 16-byte authentication secret.
        point = _b64url_bytes("keys.p256dh", self.p256dh)
        if len(point) != 65 or point[0] != 4:
            raise ValueError("keys.p256dh: must be an uncompressed P-256 public key (65 bytes)")
        if len(_b64url_bytes("keys.auth", self.auth)) != 16:
            raise ValueError("keys.auth: must be 16 bytes")


class SubscriptionInput(Model):
    """A browser's PushSubscription as `subscription.toJSON()` gives it (`expirationTime` is ignored)."""

    endpoint: Annotated[str, msgspec.Meta(max_length=2_000)]
    keys: SubscriptionKeys
    expiration_time: int | None = None

    def __post_init__(self) -> None:
        url = urlsplit(self.endpoint)
        if url.scheme not in ("https", "http") or not url.netloc:
            raise ValueError("endpoint: must be the push service's URL")


class Subscription(Model):
    id: uuid.UUID
    endpoint: str
    created_at: datetime


class PushKey(Model):
    """The VAPID public key a browser passes to `pushManager.subscribe` as `applicationServerKey`."""

    application_server_key: str
