"""Rate limits shared by every edge process through Redis, without a Redis round trip per request.

The algorithm is GCRA (a token bucket of `limit` tokens refilled at `limit` per `period`): a caller gets
`limit` requests at once, then one every `period / limit`. Its whole state is one number per caller, the
theoretical arrival time (TAT), kept in Redis and changed only by `LEASE_SCRIPT`, atomically.

Leases, so the hot path stays local: a process asks Redis for a few tokens of a caller at once and
spends them from memory. The script sizes a lease by what the caller has left: an eighth of it (at
most `MAX_LEASE`) while the caller is far from the limit, and exactly one token when the caller is
within `RESERVE` of it. Before a lease runs out it is renewed in the background, so a busy caller far
from its limit costs one batched Redis call per lease, and a request waits on Redis only for a caller
this process has not seen lately (or one near its limit).

Exactness: the limit is never exceeded, however many processes and instances share it, because a token
is spent in Redis before it is spent anywhere. The price is that a token leased to one process cannot
be spent by another: a caller may be refused by one process while another still holds a few of its
tokens. The one-token leases near the limit keep that to the tokens leased before, an eighth of the
caller's remaining budget at most; unused tokens go back to Redis when a lease sits idle for
one to two `LEASE_IDLE` periods. A refused caller is refused locally until its retry time, without
asking Redis.

Redis down: the limiter switches to a per-process GCRA with the limit divided by the number of local
worker processes (so one instance keeps roughly its limit; several instances each allow theirs), and
retries Redis after a back-off. No request fails because of Redis, nor because the limiter closes:
whoever still waits for Redis then, or asks later, gets the per-process limit. Readiness and the store
gauge report Redis down from the ask that failed until one succeeds, back-offs over or not; when a
back-off ends and no request asks, the limiter asks itself (PING), so an idle edge sees Redis return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

from redis import exceptions as redis_errors
from redis.asyncio import Redis

log = logging.getLogger(__name__)

# The largest lease: 64 tokens, or a thousandth of the limit for the huge limits of load tests (where
# a lease is only about the cost of renewing it).
MAX_LEASE = 64
# Within this fraction of its limit a caller's tokens are leased one at a time (see the module doc).
RESERVE = 0.1
# An idle lease keeps its tokens for one to two of these (seconds) before handing them back.
LEASE_IDLE = 1.0
# How long a Redis call may take (a batch twice that) before the limiter falls back to local limits.
REDIS_TIMEOUT = 0.25
BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0

# KEYS[1]: the caller's TAT (microseconds, Redis clock). ARGV: interval, tolerance (both µs), the
# reserve (tokens), the largest lease, tokens handed back. Returns {granted, µs until the next token}.
LEASE_SCRIPT = """
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local back = tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]
local tat = tonumber(redis.call('GET', KEYS[1])) or now
tat = math.max(tat - back * interval, now)
local avail = math.floor((now + tau - tat) / interval) + 1
local granted = 0
if cap > 0 and avail > 0 then
  granted = 1
  if avail > reserve then
    granted = math.max(1, math.min(cap, math.floor((avail - reserve) / 8)))
  end
  tat = tat + granted * interval
end
if granted > 0 or back > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
if granted > 0 then
  return {granted, 0}
end
return {0, math.max(1, tat - tau - now)}
"""


@dataclass(frozen=True, slots=True)
class Policy:
    """`limit` requests per `period` seconds per caller; `name` keys it in Redis and names it in headers."""

    name: str
    limit: int
    period: float
    interval: float = field(init=False)
    # The `RateLimit-Policy` header line (draft-ietf-httpapi-ratelimit-headers), built once.
    header: bytes = field(init=False)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError(f"rate limit {self.name} must allow at least one request in a positive period")
        object.__setattr__(self, "interval", self.period / self.limit)
        line = b'ratelimit-policy: "%s";q=%d;w=%d\r\n' % (self.name.encode(), self.limit, self.period)
        object.__setattr__(self, "header", line)


class _Lease:
    """What this process holds of one caller's tokens."""

    __slots__ = ("blocked_until", "last_grant", "renewing", "tokens", "used")

    def __init__(self) -> None:
        self.tokens = 0
        # Monotonic time before which the caller is refused without asking (Redis said so).
        self.blocked_until = 0.0
        # Spent from since the last sweep (a flag, not a time: no clock read on the hot path).
        self.used = True
        self.last_grant = 0
        self.renewing = False


class _Fallback:
    """A plain per-process GCRA, for when Redis cannot be reached."""

    __slots__ = ("_interval", "_tat", "_tau")

    def __init__(self, policy: Policy, share: int) -> None:
        limit = max(1, policy.limit // max(1, share))
        self._interval = policy.period / limit
        self._tau = policy.period - self._interval
        self._tat: dict[str, float] = {}

    def take(self, key: str, now: float) -> float:
        tat = max(self._tat.get(key, now), now)
        if tat - now > self._tau:
            return tat - self._tau - now
        self._tat[key] = tat + self._interval
        return 0.0

    def sweep(self, now: float) -> None:
        for key in [key for key, tat in self._tat.items() if tat < now]:
            del self._tat[key]


class PolicyState:
    """One policy's leases and fallback in this process."""

    __slots__ = ("args", "fallback", "leases", "max_lease", "policy", "prefix")

    def __init__(self, policy: Policy, share: int) -> None:
        self.policy = policy
        # The TAT only means something for one interval: a changed limit starts afresh.
        self.prefix = f"edge:rl:{policy.name}:{policy.limit}/{policy.period:g}:"
        interval_us = policy.interval * 1e6
        reserve = max(1, math.ceil(policy.limit * RESERVE))
        # Lua ARGV after the key, minus the hand-back count appended per call.
        self.args = (round(interval_us), round(policy.period * 1e6 - interval_us), reserve)
        self.max_lease = max(MAX_LEASE, policy.limit // 1000)
        self.leases: dict[str, _Lease] = {}
        self.fallback = _Fallback(policy, share)


class Limiter:
    """Decides whether a caller may send one more request under a policy.

    `check` answers from memory when it can (the hot path, no await): 0.0 to let the request through, a
    positive number of seconds to refuse it for, or None when only Redis can tell; then `acquire` asks
    it, batched with every other caller waiting at that moment.
    """

    def __init__(
        self, redis_url: str | None, policies: list[Policy], *, share: int = 1, timeout: float = REDIS_TIMEOUT
    ) -> None:
        self._redis_url = redis_url
        self._timeout = timeout  # of a Redis call; a batch gets twice as long
        self._states = {policy.name: PolicyState(policy, share) for policy in policies}
        self._redis: Redis | None = None
        self._sha = ""
        # Callers waiting for a lease (a future each), and leases to renew or hand back, by policy and key.
        self._waiting: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._renew: set[tuple[str, str]] = set()
        self._hand_back: dict[tuple[str, str], int] = {}
        self._wake = asyncio.Event()
        self._down_until = 0.0
        self._backoff = BACKOFF_MIN
        # Whether Redis answered the last ask (none yet: assumed so).
        self._answered = True
        self._tasks: list[asyncio.Task[None]] = []
        # Closed: nothing will ask Redis again, so nobody may wait for it.
        self._closed = False
        self.refused = 0
        self.fallbacks = 0

    def state(self, name: str) -> PolicyState:
        return self._states[name]

    @property
    def redis_up(self) -> bool:
        """Whether the limits are shared through Redis: it answered the last ask, and the limiter is open."""
        return self._redis is not None and not self._closed and self._answered

    @property
    def _may_ask(self) -> bool:
        """Whether to ask Redis now: no back-off running (the first ask after one tells whether it is up)."""
        return self._redis is not None and not self._closed and time.monotonic() >= self._down_until

    async def start(self) -> None:
        """Connect (after a fork: a client per worker) and start the batching loop."""
        if self._redis_url:
            self._redis = Redis.from_url(
                self._redis_url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sync_loop()), loop.create_task(self._sweep_loop())]

    async def close(self) -> None:
        """Hand every unused token back (best effort), then stop."""
        for state in self._states.values():
            for key, lease in state.leases.items():
                if lease.tokens:
                    self._hand_back[(state.policy.name, key)] = lease.tokens
            state.leases.clear()
        if self._hand_back and self._may_ask:
            with contextlib.suppress(Exception):
                await self._batch()
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Waiters of a batch cut short (or never sent) would wait forever: they fall back instead.
        self._release_waiters()
        if self._redis is not None:
            await self._redis.aclose()

    # -- the hot path ------------------------------------------------------------------------------

    def check(self, state: PolicyState, key: str) -> float | None:
        lease = state.leases.get(key)
        if lease is None:
            return None
        if lease.tokens > 0:
            lease.tokens -= 1
            lease.used = True
            # Renew half-way through a full lease, so a steady caller never waits on Redis.
            if lease.tokens * 2 <= lease.last_grant and lease.last_grant > 1 and not lease.renewing:
                lease.renewing = True
                self._renew.add((state.policy.name, key))
                self._wake.set()
            return 0.0
        now = time.monotonic()
        if now < lease.blocked_until:
            self.refused += 1
            return lease.blocked_until - now
        return None

    async def acquire(self, state: PolicyState, key: str) -> float:
        """The slow path of `check`: seconds to refuse the request for, 0.0 to let it through."""
        while True:
            wait = self.check(state, key)
            if wait is not None:
                return wait
            if not self._may_ask:
                return self._fall_back(state, key)
            ident = (state.policy.name, key)
            waiter = self._waiting.get(ident)
            if waiter is None:
                waiter = self._waiting[ident] = asyncio.get_running_loop().create_future()
                self._wake.set()
            await asyncio.shield(waiter)
            if not self._may_ask:
                return self._fall_back(state, key)

    def _fall_back(self, state: PolicyState, key: str) -> float:
        self.fallbacks += 1
        wait = state.fallback.take(key, time.monotonic())
        if wait:
            self.refused += 1
        return wait

    # -- talking to Redis, in batches --------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._redis is None or not self._may_ask:
                self._release_waiters()
                continue
            try:
                if self._waiting or self._renew or self._hand_back:
                    await self._batch()
                elif not self._answered:  # a back-off ended and nobody asked (`_mark_down`): PING
                    async with asyncio.timeout(self._timeout * 2):
                        await self._redis.ping()
                    self._backoff, self._answered = BACKOFF_MIN, True
            except Exception as exc:
                # Whatever went wrong (Redis down, slow, or stranger), waiters must not hang: fall back.
                self._mark_down(exc)
            self._release_waiters()

    async def _batch(self) -> None:
        assert self._redis is not None
        waiting, renew, hand_back = self._waiting, self._renew, self._hand_back
        self._waiting, self._renew, self._hand_back = {}, set(), {}
        wanted = waiting.keys() | renew
        # A pure hand-back asks for nothing (a largest lease of 0).
        calls = [
            (ident, self._states[ident[0]].max_lease if ident in wanted else 0, hand_back.get(ident, 0))
            for ident in dict.fromkeys([*wanted, *hand_back])
        ]
        try:
            async with asyncio.timeout(self._timeout * 2):
                results = await self._run(calls)
        except BaseException:
            # Nothing was learnt: whoever waited gets the fallback, renewals may be asked again.
            self._waiting.update(waiting)
            for name, key in renew:
                lease = self._states[name].leases.get(key)
                if lease is not None:
                    lease.renewing = False
            raise
        now = time.monotonic()
        for ((name, key), cap, _), (granted, retry_us) in zip(calls, results, strict=True):
            if not cap:
                continue
            leases = self._states[name].leases
            lease = leases.get(key)
            if lease is None:
                lease = leases[key] = _Lease()
            lease.renewing = False
            lease.used = True
            if granted:
                lease.tokens += granted
                lease.last_grant = granted
                lease.blocked_until = 0.0
            elif lease.tokens == 0:
                lease.blocked_until = now + retry_us / 1e6
            future = waiting.get((name, key))
            if future is not None and not future.done():
                future.set_result(None)
        self._backoff = BACKOFF_MIN
        self._answered = True

    async def _run(self, calls: list[tuple[tuple[str, str], int, int]]) -> list[list[int]]:
        """One pipelined round trip: a lease script call per caller."""
        assert self._redis is not None
        for attempt in range(2):
            if not self._sha:
                self._sha = await self._redis.script_load(LEASE_SCRIPT)
            async with self._redis.pipeline(transaction=False) as pipe:
                for (name, key), cap, back in calls:
                    state = self._states[name]
                    pipe.evalsha(self._sha, 1, state.prefix + key, *state.args, cap, back)
                try:
                    return [[int(x) for x in result] for result in await pipe.execute()]
                except redis_errors.NoScriptError:
                    # Redis restarted or its scripts were flushed: load ours again, once.
                    if attempt:
                        raise
                    self._sha = ""
        raise AssertionError("unreachable")

    def _release_waiters(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(None)

    def _mark_down(self, exc: BaseException) -> None:
        log.warning("rate limit store unreachable (%s); per-process limits for %.1f s", exc, self._backoff)
        self._down_until = time.monotonic() + self._backoff
        self._answered = False
        # Asked again when the back-off ends, request or not: else an idle edge reports a Redis back as down.
        asyncio.get_running_loop().call_later(self._backoff, self._wake.set)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    # -- housekeeping ------------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_IDLE)
            self.sweep()

    def sweep(self) -> None:
        """Forget callers idle since the last sweep, handing their unused tokens back to Redis."""
        now = time.monotonic()
        for state in self._states.values():
            idle = []
            for key, lease in state.leases.items():
                if lease.used or lease.renewing or now < lease.blocked_until:
                    lease.used = False
                else:
                    idle.append(key)
            for key in idle:
                lease = state.leases.pop(key)
                if lease.tokens and self._redis is not None:
                    self._hand_back[(state.policy.name, key)] = lease.tokens
            state.fallback.sweep(now)
        if self._hand_back:
            self._wake.set()
