"""The Redis side of inventory: key names and the Lua scripts that screen and serialise reservations.

Redis holds, for every stock row, its availability (`inv:a:<product>:<variant>` = on hand minus
active reservations), a hash per reservation (`inv:r:<order>`: state, lines, expiry, attempt token),
the deadlines of active reservations (the sorted set `inv:deadlines`, scored by expiry in ms) and a
marker `inv:loaded` written last by a rebuild. Each script checks the marker first: without it Redis
was flushed or restarted (it keeps nothing on disk) and answers NOT_LOADED, never "sold out"; a
missing availability key likewise means "not loaded yet", never zero.

Every script validates everything before its first write, because Lua has no rollback. Scripts that
finish a reservation read its lines from the reservation's hash, so this needs one Redis, not a
cluster. Invariant inside Redis, kept by every script: availability = on hand - sum of RESERVED lines.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

LOADED = "inv:loaded"
DEADLINES = "inv:deadlines"
# A finished reservation's hash is kept a day, so a late repeat of the same order is still recognised
# without a database round trip (after that, PostgreSQL's primary key recognises it).
FINISHED_TTL_MS = 24 * 3600 * 1000


Arg = bytes | str | int | float
"""A key or argument of a script call."""
Scalar = bytes | int
Reply = Scalar | list[Scalar]
"""What a script returns: a Lua string arrives as bytes, a number as int, a flat table as a list."""
Call = tuple[list[str], Sequence[Arg]]
"""One script call: its keys and its arguments."""


def table(reply: Reply) -> list[Scalar]:
    """The reply of a script that always answers with a table (RESERVE, ADJUST)."""
    if not isinstance(reply, list):
        raise TypeError(f"expected a table from the script, got {reply!r}")
    return reply


def avail_key(product_id: uuid.UUID, variant_id: uuid.UUID) -> str:
    return f"inv:a:{product_id}:{variant_id}"


def gone_key(product_id: uuid.UUID) -> str:
    """Set while the product is deleted: its stock may no longer be reserved."""
    return f"inv:g:{product_id}"


def reservation_key(order_id: uuid.UUID) -> str:
    return f"inv:r:{order_id}"


# KEYS: loaded, reservation, deadlines, avail_1..n, gone_1..n
# ARGV: order id, expiry ms, token, n, quantity_1..n
# -> {'OK'} | {'EXISTS', state, expiry} | {'NOT_LOADED'} | {'MISSING', i...} | {'SHORT', i, available...}
RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local state = redis.call('HGET', KEYS[2], 's')
if state then return {'EXISTS', state, redis.call('HGET', KEYS[2], 'x')} end
local n = tonumber(ARGV[4])
local missing, short = {'MISSING'}, {'SHORT'}
for i = 1, n do
  local available = redis.call('GET', KEYS[3 + i])
  if not available then
    missing[#missing + 1] = i
  elseif redis.call('EXISTS', KEYS[3 + n + i]) == 1 then
    short[#short + 1] = i
    short[#short + 1] = -1
  elseif tonumber(available) < tonumber(ARGV[4 + i]) then
    short[#short + 1] = i
    short[#short + 1] = tonumber(available)
  end
end
if #missing > 1 then return missing end
if #short > 1 then return short end
local keys, quantities = {}, {}
for i = 1, n do
  redis.call('DECRBY', KEYS[3 + i], ARGV[4 + i])
  keys[i] = KEYS[3 + i]
  quantities[i] = ARGV[4 + i]
end
redis.call('HSET', KEYS[2], 's', 'RESERVED', 'x', ARGV[2], 't', ARGV[3],
           'k', table.concat(keys, ' '), 'q', table.concat(quantities, ' '))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return {'OK'}
"""

# Gives a RESERVED reservation's units back (when `give_back` is 1) and marks it final.
# KEYS: loaded, reservation, deadlines; ARGV: order id, new state, give_back, token ('' = any), ttl ms
# -> the state found before the call ('NONE' when Redis does not know the order), or 'NOT_LOADED'
FINISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'NOT_LOADED' end
local state = redis.call('HGET', KEYS[2], 's')
if state ~= 'RESERVED' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return state or 'NONE'
end
if ARGV[4] ~= '' and redis.call('HGET', KEYS[2], 't') ~= ARGV[4] then return 'OTHER' end
if ARGV[3] == '1' then
  local quantities = {}
  for q in string.gmatch(redis.call('HGET', KEYS[2], 'q'), '%S+') do quantities[#quantities + 1] = q end
  local i = 0
  for key in string.gmatch(redis.call('HGET', KEYS[2], 'k'), '%S+') do
    i = i + 1
    if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, quantities[i]) end
  end
end
if ARGV[2] == 'UNDONE' then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], 's', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('ZREM', KEYS[3], ARGV[1])
return 'RESERVED'
"""

# Moves availability by a delta (on hand changed); a decrease never goes below zero.
# KEYS: loaded, avail; ARGV: delta -> {'OK', new} | {'SHORT', available} | {'MISSING'} | {'NOT_LOADED'}
ADJUST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_LOADED'} end
local available = redis.call('GET', KEYS[2])
if not available then return {'MISSING'} end
local delta = tonumber(ARGV[1])
if delta < 0 and tonumber(available) + delta < 0 then return {'SHORT', tonumber(available)} end
return {'OK', redis.call('INCRBY', KEYS[2], delta)}
"""

# Loads one row's availability computed from PostgreSQL, unless someone already did.
# KEYS: loaded, avail, gone; ARGV: available, deleted (1/0) -> 1 | 0 | 'NOT_LOADED'
LOAD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'NOT_LOADED' end
if ARGV[2] == '1' then redis.call('SET', KEYS[3], '1') end
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then return 1 end
return 0
"""


class Scripts:
    """The scripts above, called by SHA (EVALSHA) and loaded again when Redis has forgotten them."""

    SOURCES = {"reserve": RESERVE, "finish": FINISH, "adjust": ADJUST, "load": LOAD}

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in self.SOURCES.items()}

    async def load_all(self) -> None:
        for source in self.SOURCES.values():
            await self.redis.script_load(source)

    async def call(self, name: str, keys: list[str], args: Sequence[Arg]) -> Reply:
        """One script call; the reply has the shape the script's comment above gives."""
        try:
            reply: Reply = await self.redis.evalsha(self.sha[name], len(keys), *keys, *args)
        except NoScriptError:
            await self.load_all()
            reply = await self.redis.evalsha(self.sha[name], len(keys), *keys, *args)
        return reply

    async def call_many(self, name: str, calls: Sequence[Call]) -> list[Reply]:
        """One script per call, all in one round trip (each call atomic on its own)."""

        async def run() -> list[Reply]:
            pipe = self.redis.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(self.sha[name], len(keys), *keys, *args)
            return await pipe.execute()

        try:
            return await run()
        except NoScriptError:
            await self.load_all()
            return await run()
