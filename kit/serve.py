"""Run a service's ASGI app on granian with uvloop: the body of every `python -m svc_<name>`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from granian.constants import Interfaces, Loops
from granian.server import Server

from kit import logs, settings

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics(config: settings.Settings) -> None:
    """prometheus_client's multiprocess mode for several workers: each writes its figures to files in
    one directory and a scrape of any worker sums them all (kit.metrics). A given directory is emptied
    first (figures of an earlier run would be counted again); else a fresh one is made. Set in the
    environment before the workers start, as prometheus_client reads it there when they import it."""
    if config.metrics_dir:
        for stale in Path(config.metrics_dir).glob("*.db"):
            stale.unlink()
    else:
        os.environ[METRICS_DIR] = tempfile.mkdtemp(prefix=f"shop-{config.service}-metrics-")


def run(target: str, service: str) -> None:
    """Serve `target` ("svc_auth.app:app") on the service's host and port from the environment."""
    config = settings.load(service)
    if config.workers > 1:
        # One worker keeps its figures in memory: cheaper per observation, and nothing to sum.
        share_metrics(config)
    Server(
        target,
        address=config.host,
        port=config.http_port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        workers=config.workers,
        # Requests are logged by kit.metrics.Observe (sampled, with the route and the trace).
        log_access=False,
        log_dictconfig=logs.granian_config(service, config.log_level),
        backlog=2048,
        # A worker that dies (a crash, an OOM kill) is replaced; the others serve meanwhile.
        respawn_failed_workers=True,
        respawn_interval=0.5,
    ).serve()
