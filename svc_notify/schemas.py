"""Requests and responses of svc_notify, camelCase on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from kit.http import Model


class Notification(Model):
    """One delivery to the caller. The verification link is redacted: the mail itself is the only copy."""

    id: uuid.UUID
    channel: str
    recipient: str
    template: str
    subject: str
    body: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class TemplateEdit(Model):
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]

    def __post_init__(self) -> None:
        # A line break in a header would let an edited subject inject headers of its own.
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError("subject: must be a single line")


class Template(Model):
    name: str
    subject: str
    body: str
    placeholders: list[str]
    updated_at: datetime
