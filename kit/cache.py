"""Redis for caching: cache-aside with one loader per key, versioned namespaces, graceful outages.

Values are bytes (usually a msgspec-encoded JSON response body), so a hit can be sent as it is.

- `get_or_load(key, ttl, load)`: a hit is one GET; on a miss exactly one coroutine per process runs
  `load` (others await it), and across processes a short Redis lock makes the others wait for the
  value instead of all hitting the database (stampede protection).
- Namespaces (`ns="product:list"`) hold a version number; a key inside is `ns:v<version>:key`.
  `bump(ns)` invalidates every key of the namespace at once, without `KEYS`/`SCAN`; reading the version
  and the value is one round trip (a Lua script).
- When Redis fails, reads go straight to `load` and writes are skipped; after a failure Redis is left
  alone for a second, so an outage costs one timeout per second, not one per request.
- Lookups go through the client's lane (`kit.redis_lane`: one pipelined connection of our own); the
  rest (locks, bumps, writes) through redis-py. A namespaced value found is kept in the process until
  Redis reports its namespace's version changed (`kit.near`): a repeated hit makes no round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import NoScriptError, RedisError

from kit.redis_lane import RedisLane, bulk, prefix

log = logging.getLogger(__name__)

lookups = Counter("shop_cache_lookups_total", "Cache lookups", ["cache", "result"])

Loader = Callable[[], Awaitable[bytes | None]]
# Builds a value from what the process holds, given the namespace's version (None: Redis not asked).
Computer = Callable[[int | None], Awaitable[bytes]]

_GET_VERSIONED = """
local version = redis.call('GET', KEYS[1]) or '0'
return {version, redis.call('GET', KEYS[1] .. ':v' .. version .. ':' .. ARGV[1])}
"""
_BUMP = """
local now = redis.call('TIME')
local previous = tonumber(redis.call('GET', KEYS[1])) or 0
local version = math.max(now[1] * 1000 + math.floor(now[2] / 1000), previous + 1)
redis.call('SET', KEYS[1], version)
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return version
"""
_LOCK_TTL_MS = 5000
_LOCK_WAIT = 2.0
_PAUSE_AFTER_ERROR = 1.0


class Client(Redis):
    """redis-py's client with the cache's lane beside it (`kit.redis_lane`), closed with it."""

    lane: RedisLane

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        self.lane.close()
        await super().aclose(close_connection_pool)


def connect(url: str) -> Client:
    """The process's Redis client: binary-safe, short timeouts so an outage fails fast."""
    client = Client.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
        max_connections=256,
    )
    assert isinstance(client, Client)  # from_url builds its own class; typed as redis-py's
    client.lane = lane_of(client)
    return client


def lane_of(redis: Redis) -> RedisLane:
    """The lane of a client made by `connect`; a client made otherwise gets one, closed only when the
    process ends (tests)."""
    lane: RedisLane | None = getattr(redis, "lane", None)
    if lane is None:
        pool = redis.connection_pool
        tls = issubclass(pool.connection_class, SSLConnection)
        lane = RedisLane(pool.connection_kwargs, tls=tls, near=True)
        redis.lane = lane  # type: ignore[attr-defined]
    return lane


class Cache:
    """Cache-aside over one Redis client; `name` labels its metrics and stats."""

    def __init__(self, redis: Redis | None, name: str) -> None:
        self.redis = redis
        self.name = name
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self._paused_until = 0.0
        self._get_versioned = redis.register_script(_GET_VERSIONED) if redis is not None else None
        self._bump = redis.register_script(_BUMP) if redis is not None else None
        self._lane = lane_of(redis) if redis is not None else None
        # EVALSHA, the script's digest and its one key: packed once, the namespace and key appended.
        self._versioned_command = (
            prefix(5, "EVALSHA", self._get_versioned.sha, 1) if self._get_versioned is not None else b""
        )
        # Labelled children looked up once: `labels()` costs more than the increment, on every lookup.
        self._hit, self._miss, self._error = (lookups.labels(name, r) for r in ("hit", "miss", "error"))

    @property
    def available(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._paused_until

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self._paused_until = time.monotonic() + _PAUSE_AFTER_ERROR
        self._error.inc()
        log.warning("cache unavailable, serving from the source", extra={"error": repr(exc)})

    def _count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        (self._hit if hit else self._miss).inc()

    async def get(self, key: str) -> bytes | None:
        if not self.available:
            return None
        assert self._lane is not None
        try:
            return await self._lane.execute("GET", key)  # type: ignore[no-any-return]
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        if not self.available:
            return
        assert self.redis is not None
        try:
            await self.redis.set(key, value, ex=ttl)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def delete(self, *keys: str) -> None:
        if not keys or not self.available:
            return
        assert self.redis is not None
        try:
            await self.redis.delete(*keys)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def bump(self, namespace: str, keep: int | None = None) -> None:
        """Invalidate every key of `namespace`: old versions are never read again and expire by TTL.

        Versions are Redis clock milliseconds (kept increasing), so a counter that expired never comes
        back to a version still cached. `keep` (seconds, at least the TTL of the namespace's values)
        lets it expire that way, so per-entity namespaces do not pile up.
        """
        if not self.available:
            return
        assert self._bump is not None
        try:
            await self._bump(keys=[namespace], args=[keep or 0])
        except (RedisError, OSError) as exc:
            self._failed(exc)
        finally:
            self.forget([namespace])

    def forget(self, namespaces: Iterable[str]) -> None:
        """Drop what this process holds near of `namespaces`, after a write that moved their versions:
        the process reads its own write at once; the others when Redis's push reaches them."""
        if self._lane is not None and self._lane.near is not None:
            self._lane.near.forget(namespaces)

    async def get_or_load(
        self, key: str, ttl: int, load: Loader, namespace: str | None = None
    ) -> bytes | None:
        """The cached value of `key` (inside `namespace` when given), loading and caching it on a miss.

        `load` returning None means "no such thing": nothing is cached and None is returned.
        """
        full_key, value = await self._lookup(key, namespace)
        if value is not None:
            self._count(True)
            return value
        self._count(False)
        return await self._single_flight(full_key, ttl, load)

    async def cached(self, key: str, namespace: str | None = None) -> bytes | None:
        """The cached value of `key` (inside `namespace`), None on a miss: nothing is loaded, and a miss
        is not counted (the caller goes on to `get_or_load`, which counts it)."""
        _, value = await self._lookup(key, namespace)
        if value is not None:
            self._count(True)
        return value

    async def _lookup(self, key: str, namespace: str | None) -> tuple[str, bytes | None]:
        """The key as stored (with the namespace's version) and its value; `key` and None when Redis is
        unavailable, `key` and the value when it is held near (a hit needs no stored key)."""
        if not self.available:
            return key, None
        if namespace is not None and (near := self._near(namespace, key)) is not None:
            return key, near
        assert self._lane is not None
        try:
            if namespace is None:
                return key, await self._lane.execute("GET", key)
            version, value = await self._versioned(namespace, key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return key, None
        # The script answers the version as the counter stands, "0" before any bump.
        return f"{namespace}:v{(version or b'0').decode()}:{key}", value

    async def get_or_compute(self, key: str, ttl: int, compute: Computer, namespace: str) -> bytes:
        """The cached value of `key` in `namespace`, or `compute(version)` cached under that version.

        For values the process computes from state of its own, with the version it must be at least as
        new as: no database to shield, so no lock across processes (two round trips fewer on a miss).
        """
        version: int | None = None
        if self.available:
            if (near := self._near(namespace, key)) is not None:
                self._count(True)
                return near
            try:
                raw, value = await self._versioned(namespace, key)
                if value is not None:
                    self._count(True)
                    return value
                version = int(raw or b"0")
            except (RedisError, OSError) as exc:
                self._failed(exc)
        self._count(False)
        value = await compute(version)
        if version is not None and self._lane is not None:
            try:
                await self._lane.execute("SET", f"{namespace}:v{version}:{key}", value, "EX", ttl)
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return value

    async def version(self, namespace: str) -> int | None:
        """The namespace's version, None when Redis cannot be asked."""
        if not self.available or self._lane is None:
            return None
        try:
            return int(await self._lane.execute("GET", namespace) or b"0")
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None

    async def _versioned(self, namespace: str, key: str) -> list[bytes | None]:
        """The namespace's version and the value of `key` inside it, in one round trip; the value is
        kept near (`kit.near`) for the next lookup."""
        assert self._lane is not None and self._get_versioned is not None
        near = self._lane.near
        epoch = near.epoch if near is not None else 0
        try:
            found: list[bytes | None] = await self._lane.send(
                self._versioned_command + bulk(namespace) + bulk(key)
            )
        except NoScriptError:
            # Redis restarted or was flushed: the client's Script loads it again and retries.
            return await self._get_versioned(keys=[namespace], args=[key])  # type: ignore[no-any-return]
        if near is not None and (value := found[1]) is not None:
            near.put(namespace, key, value, epoch)
        return found

    def _near(self, namespace: str, key: str) -> bytes | None:
        near = self._lane.near if self._lane is not None else None
        return near.get(namespace, key) if near is not None else None

    async def _single_flight(self, key: str, ttl: int, load: Loader) -> bytes | None:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._load_once(key, ttl, load)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else was waiting
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]

    async def _load_once(self, key: str, ttl: int, load: Loader) -> bytes | None:
        """Load under a short Redis lock so that, across processes, one loader fills the key."""
        if not self.available:
            return await load()
        assert self.redis is not None
        lock = f"lock:{key}"
        try:
            owner = await self.redis.set(lock, b"1", nx=True, px=_LOCK_TTL_MS)
            if not owner:
                deadline = time.monotonic() + _LOCK_WAIT
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                    # The lock first, then the value: the owner sets the value before it drops the
                    # lock, so a lock seen gone means the value (if any) is there to read. The other
                    # way round, the owner could finish between the two and this process load again.
                    locked = await self.redis.exists(lock)
                    if (value := await self.redis.get(key)) is not None:
                        return value  # type: ignore[return-value]
                    if not locked:
                        break
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return await load()
        value = await load()
        try:
            if value is not None:
                await self.redis.set(key, value, ex=ttl)
            if owner:
                await self.redis.delete(lock)
        except (RedisError, OSError) as exc:
            self._failed(exc)
        return value
