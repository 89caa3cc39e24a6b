"""What svc_notify builds once at start and its routes, handlers and dispatcher share (`CONTEXT`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from py_vapid import Vapid01

from kit.app import Deps, Resource
from svc_notify import config, twilio
from svc_notify.channels.push import application_server_key, vapid_key


@dataclass(frozen=True, slots=True)
class Context:
    config: config.NotifyConfig
    twilio: twilio.TwilioConfig
    vapid: Vapid01
    push_key: str  # the VAPID public key browsers subscribe with


@contextlib.asynccontextmanager
async def _context(deps: Deps) -> AsyncIterator[Context]:
    own = config.NotifyConfig.of(deps.settings)
    vapid = await vapid_key(deps.db, own)
    yield Context(own, own.twilio, vapid, application_server_key(vapid))


CONTEXT = Resource("context", _context)
