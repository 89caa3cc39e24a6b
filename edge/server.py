"""Start, serve and drain the edge.

`Edge` is one worker: its listening socket, client connections, upstream pools and proxy. Tests start
one in-process on an ephemeral port; `run` is what `python -m edge` does, in one process or several
forked workers that share the port through SO_REUSEPORT and let the kernel spread connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time

import uvloop

from edge import loader
from edge.accesslog import AccessLog
from edge.admin import AdminServer
from edge.config import EdgeConfig
from edge.cors import Cors
from edge.docs import ApiDocs
from edge.health import HealthChecks
from edge.jwt import Verifier
from edge.limits import Deadlines
from edge.metrics import Metrics
from edge.peers import TrustedProxies
from edge.protocol import HttpProtocol
from edge.proxy import Proxy
from edge.ratelimit import Limiter, Policy
from edge.readiness import Readiness
from edge.upstream import Cluster, Pool
from kit import telemetry

log = logging.getLogger(__name__)


class Edge:
    def __init__(self, config: EdgeConfig, worker: int = 0) -> None:
        self.config = config
        # Worker `worker` of several answers /metrics on the admin port plus its index (edge/admin.py).
        self.worker = worker
        self.metrics = Metrics()
        self.clusters = {
            name: Cluster(
                name,
                [
                    Pool(
                        url,
                        max_connections=config.pool_max_connections,
                        connect_timeout=config.connect_timeout,
                        idle_timeout=config.pool_idle_timeout,
                        eject_after=config.eject_after,
                        eject_seconds=config.eject_seconds,
                    )
                    for url in urls
                ],
                config.balance.get(name, "least_requests"),
            )
            for name, urls in config.clusters.items()
        }
        policies = [config.user_limit, config.ip_limit]
        policies += [Policy(limit.name, limit.count, limit.seconds) for limit in config.routes.limits]
        self.limiter = Limiter(config.redis_url, policies, share=config.workers)
        self.readiness = Readiness(self.clusters, self.limiter)
        self.health = HealthChecks(
            [pool for cluster in self.clusters.values() for pool in cluster.pools],
            config.health_interval,
            config.health_timeout,
        )
        self._connections: set[HttpProtocol] = set()
        self._deadlines = Deadlines(
            self._connections, config.limits, [cluster.expire for cluster in self.clusters.values()]
        )
        self.docs = ApiDocs(self.clusters, config.routes) if config.docs else None
        self._server: asyncio.Server | None = None
        # The ports actually bound, known once started (the config may ask for 0).
        self.port = 0
        self.admin: AdminServer | None = None

    async def start(self) -> None:
        config = self.config
        verifier = Verifier(config.jwt_secret.reveal(), config.jwt_issuer, config.jwt_audience)
        proxy = Proxy(
            config.routes,
            self.clusters,
            verifier,
            self.metrics,
            config.response_timeout,
            limiter=self.limiter,
            user_limit=config.user_limit.name,
            ip_limit=config.ip_limit.name,
            cors=Cors(config.cors),
            peers=TrustedProxies(config.trusted_proxies),
            retries=config.retries,
            access_log=AccessLog(config.access_log) if config.access_log > 0 else None,
            pages={**self.readiness.pages(), **(self.docs.pages() if self.docs is not None else {})},
            tracer=telemetry.tracer,
        )
        await self.limiter.start()
        self.health.start()
        if self.docs is not None:
            self.docs.start()
        self._deadlines.start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpProtocol(proxy, config.limits, self._connections),
            config.host,
            config.port,
            reuse_port=True,
            backlog=4096,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.admin = AdminServer(
            {
                "/metrics": lambda: (
                    200,
                    Metrics.content_type,
                    self.metrics.render(self.clusters, self.limiter),
                ),
                **self.readiness.pages(),
            }
        )
        admin_port = config.admin_port + self.worker if config.admin_port else 0
        await self.admin.start(config.host, admin_port)

    async def stop(self) -> None:
        assert self._server is not None
        # 1. Stop accepting (the admin port answers until the end).
        self._server.close()
        # 2. Idle connections close now; busy ones once their current answer is out.
        for conn in list(self._connections):
            conn.shutdown()
        # 3. In-flight requests get the grace period, then whatever is left is cut.
        if self._connections:
            await asyncio.wait(
                [conn.closed for conn in self._connections], timeout=self.config.shutdown_grace
            )
        for conn in list(self._connections):
            conn.abort()
        # 4. Stop the helpers: deadlines, health checks, the docs' fetcher, the limiter (handing unused
        #    tokens back).
        self._deadlines.stop()
        await self.health.stop()
        if self.docs is not None:
            await self.docs.stop()
        await self.limiter.close()
        # 5. Close the upstream pools and the admin port.
        for cluster in self.clusters.values():
            cluster.close()
        if self.admin is not None:
            await self.admin.stop()


async def serve(config: EdgeConfig, worker: int = 0) -> None:
    """Run one worker (number `worker` of several) until SIGTERM or SIGINT, then stop gracefully."""
    # Per worker, after the fork: each process exports its spans from a thread of its own.
    telemetry.setup("edge", config.otlp_endpoint)
    edge = Edge(config, worker)
    await edge.start()
    # What starting made lives as long as the worker: out of the cyclic collector's sight, as in the
    # services (kit.app); a full collection of it stalled every request in flight for 40-100 ms.
    gc.freeze()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    build = "compiled" if loader.runs_compiled() else "interpreted (no current build: `make native`)"
    assert edge.admin is not None
    log.info(
        "edge worker %d listening on %s:%d (admin %d), %s",
        os.getpid(),
        config.host,
        edge.port,
        edge.admin.port,
        build,
    )
    await stopping.wait()
    log.info("edge worker %d stopping", os.getpid())
    await edge.stop()
    telemetry.shutdown()


def run(config: EdgeConfig) -> None:
    """Serve with `config.workers` processes. The parent of several forwards stop signals and replaces
    a worker that dies (a crash, an OOM kill) while the others go on serving."""
    if config.workers <= 1:
        uvloop.run(serve(config))
        return
    children: dict[int, tuple[int, float]] = {}  # pid: (worker index, when it was forked)
    stopping = False

    def spawn(worker: int) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                # The parent's handlers are not the worker's: serve() installs its own.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                uvloop.run(serve(config, worker))
            finally:
                os._exit(0)
        children[pid] = (worker, time.monotonic())

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in range(config.workers):
        spawn(worker)
    while children:
        pid, status = os.wait()
        worker, forked = children.pop(pid, (0, 0.0))
        if stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        log.warning("edge worker %d exited (%d); starting another", pid, code)
        if time.monotonic() - forked < 1.0:
            time.sleep(1.0)  # one that dies at once would otherwise be forked in a tight loop
        if not stopping:
            spawn(worker)  # its replacement takes its admin port
