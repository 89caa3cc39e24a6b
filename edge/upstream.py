"""The service side of the edge: one pool of keep-alive connections per destination, a cluster over them.

- `Pool` keeps a destination's idle connections (`edge.connection`; most recently used first, so the
  hot ones stay warm and the rest age out), caps how many are open, discards a connection after any
  error, an unfinished exchange or `Connection: close`, and holds the edge's verdict on the
  destination's health.
- `Cluster` is a service's destinations. It balances round-robin or to the destination with the fewest
  requests in flight, skips destinations that failed their health check (edge.health) or were ejected
  after `eject_after` failures in a row (for `eject_seconds`, doubled on each ejection in a row, at most
  ten times), and fails over to the next one when a destination cannot be reached. When every
  destination is down or ejected it tries them all anyway: a wrong health verdict must not turn into
  an outage, and a real outage answers 503 just the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import monotonic
from urllib.parse import urlsplit

from edge.connection import Connection
from edge.errors import ServiceUnavailable
from edge.limits import expire_guarded

log = logging.getLogger(__name__)

BALANCING = ("least_requests", "round_robin")


class ConnectFailed(Exception):
    """A destination could not give us a connection (refused, timed out, or its pool is exhausted)."""


class PoolExhausted(ConnectFailed):
    """Every connection to the destination stayed busy: overload, not a sign of a broken destination."""


class Pool:
    """The connections to one destination, and what the edge knows of its health."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int,
        connect_timeout: float,
        idle_timeout: float,
        eject_after: int = 3,
        eject_seconds: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream destination must be an http://host:port URL, got {url!r}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        # For requests that arrive without a Host (HTTP/1.0): name the destination instead.
        self.authority = parts.netloc.encode()
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        # Shorter than the services' own keep-alive timeout, so we never reuse one they are closing.
        self._idle_timeout = idle_timeout
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self._connecting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        # Requests in flight (for least-requests balancing) and the health verdicts.
        self.outstanding = 0
        self.healthy = True
        self.failures = 0
        self.ejected_until = 0.0
        self._ejections = 0
        self._eject_after = eject_after
        self._eject_seconds = eject_seconds

    # -- health ------------------------------------------------------------------------------------

    def usable_at(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until

    def succeeded(self) -> None:
        if self.failures:
            self.failures = 0
            self._ejections = 0

    def failed(self) -> None:
        """A connect or exchange failure; enough in a row eject the destination for a while."""
        self.failures += 1
        if self.failures >= self._eject_after:
            now = monotonic()
            seconds = self._eject_seconds * 2 ** min(self._ejections, 10)
            self.ejected_until = now + seconds
            self._ejections += 1
            self.failures = 0
            log.warning("upstream %s ejected for %.1f s after repeated failures", self.url, seconds)

    # -- connections -------------------------------------------------------------------------------

    async def acquire(self, connect_timeout: float | None = None) -> tuple[Connection, bool]:
        """A connection for one exchange, and whether it was reused from the idle list.

        The caller must `release` it; until then it counts as a request in flight.
        """
        conn, reused = await self._acquire(connect_timeout or self._connect_timeout)
        self.outstanding += 1
        return conn, reused

    def take_idle(self) -> Connection | None:
        """An idle connection, now, or None; like `acquire`, the caller must `release` it."""
        now = monotonic()
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.lost or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > self._idle_timeout:
                conn.close()
                continue
            conn.busy = True
            self.outstanding += 1
            return conn
        return None

    async def _acquire(self, connect_timeout: float) -> tuple[Connection, bool]:
        loop = asyncio.get_running_loop()
        while True:
            conn = self.take_idle()
            if conn is not None:
                # Counted again by `acquire`.
                self.outstanding -= 1
                return conn, True
            if len(self._open) + self._connecting < self._max_connections:
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(connect_timeout):
                    await waiter
            except TimeoutError:
                raise PoolExhausted(f"{self.url}: all {self._max_connections} connections busy") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._connecting += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: Connection(self), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{self.url}: {exc or 'connect timed out'}") from None
        finally:
            self._connecting -= 1
        if not conn.lost:
            # One already lost was forgotten before it got here (`forget`), and fails at its first use.
            self._open.add(conn)
        conn.busy = True
        return conn, False

    def release(self, conn: Connection) -> None:
        self.outstanding -= 1
        conn.busy = False
        if self._closed or not (conn.reusable and conn.complete and conn.request_sent and conn.usable):
            conn.close()
            return
        conn.idle_since = monotonic()
        self._idle.append(conn)
        if self._waiters:
            self._wake_one()

    def forget(self, conn: Connection) -> None:
        """Drop a closing connection from the books, freeing its slot."""
        if conn in self._open:
            self._open.discard(conn)
            if conn in self._idle:
                self._idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def expire(self, now: float) -> None:
        """Fail the exchanges whose service has been silent past their timeout, each on its own: one
        whose expiry raises is logged, and the others of the pool still get their timeout."""
        for conn in [conn for conn in self._open if conn.deadline and now > conn.deadline]:
            expire_guarded(conn.expire, now)

    def close(self) -> None:
        """Close the idle connections now; busy ones close when they are released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Cluster:
    """The destinations of one service."""

    def __init__(self, name: str, pools: list[Pool], balance: str = "least_requests") -> None:
        if not pools:
            raise ValueError(f"cluster {name} has no destinations")
        if balance not in BALANCING:
            raise ValueError(
                f"cluster {name}: balancing must be one of {', '.join(BALANCING)}, got {balance!r}"
            )
        self.name = name
        self.pools = pools
        self._least_requests = balance == "least_requests"
        self._next = 0

    @property
    def destinations(self) -> list[str]:
        return [pool.url for pool in self.pools]

    def order(self, avoid: Pool | None = None) -> list[Pool]:
        """The destinations to try, best first: usable ones in balancing order, then the rest.

        The first is the one to use; its idle connection, when it has one, can be taken at once.
        """
        pools = self.pools
        start = self._next
        self._next = (start + 1) % len(pools)
        if len(pools) == 1:
            return pools
        rotated = pools[start:] + pools[:start]
        if self._least_requests:
            # Stable sort: ties keep the rotation, so an idle cluster is served round-robin.
            rotated.sort(key=lambda pool: pool.outstanding)
        now = monotonic()
        usable = [pool for pool in rotated if pool.usable_at(now) and pool is not avoid]
        return usable + [pool for pool in rotated if pool not in usable]

    def expire(self, now: float) -> None:
        for pool in self.pools:
            pool.expire(now)

    async def connect(
        self, connect_timeout: float | None = None, order: list[Pool] | None = None
    ) -> tuple[Connection, bool]:
        """A connection to the best destination (or the first of `order`), trying the others in turn if
        it cannot be reached."""
        for pool in order or self.order():
            try:
                return await pool.acquire(connect_timeout)
            except ConnectFailed as exc:
                if not isinstance(exc, PoolExhausted):
                    pool.failed()
                log.debug("upstream unreachable: %s", exc)
        raise ServiceUnavailable(f"No {self.name} service destination is reachable.")

    def close(self) -> None:
        for pool in self.pools:
            pool.close()
