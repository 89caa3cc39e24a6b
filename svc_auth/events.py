"""Events svc_auth publishes (auth.exchange). It consumes none."""

from __future__ import annotations

import uuid
from datetime import datetime

from kit.bus import Event


class UserRegistered(Event):
    """A new account (or a resend) whose verification mail svc_notify sends."""

    routing_key = "user.registered"
    user_id: uuid.UUID
    email: str
    full_name: str
    verification_token: str
    expires_at: datetime
    resent: bool = False


class UserVerified(Event):
    routing_key = "user.verified"
    user_id: uuid.UUID
    email: str
    full_name: str
