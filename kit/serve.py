"""Run a service's ASGI app on granian with uvloop: the body of every `python -m svc_<name>`."""

from __future__ import annotations

from granian.constants import Interfaces, Loops
from granian.server import Server

from kit import settings


def run(target: str, service: str) -> None:
    """Serve `target` ("svc_auth.app:app") on the service's host and port from the environment."""
    config = settings.load(service)
    workers = int(config.extra.get(f"{service.upper()}_WORKERS", "1"))
    Server(
        target,
        address=config.host,
        port=config.http_port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=workers,
        log_access=False,
        backlog=2048,
        # A worker that dies (a crash, an OOM kill) is replaced; the others serve meanwhile.
        respawn_failed_workers=True,
        respawn_interval=0.5,
    ).serve()
