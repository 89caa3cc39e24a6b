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

import functools
import hashlib
import uuid
from collections.abc import Sequence
from typing import cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

LOADED = "inv:loaded"
DEADLINES = "inv:deadlines"
RESERVATION_PREFIX = "inv:r:"
# A finished reservation's hash is kept a day, so a late repeat of the same order is still recognised
# without a database round trip (after that, PostgreSQL's primary key recognises it).
FINISHED_TTL_MS = 24 * 3600 * 1000


Arg = bytes | str | int | float
"""A key or argument of a script call."""
Scalar = bytes | int
Reply = Scalar | list[Scalar] | list[list[Scalar]]
"""What a script returns: a Lua string arrives as bytes, a number as int, a table as a list."""
Call = tuple[list[str], Sequence[Arg]]
"""One script call: its keys and its arguments."""
Order = list[str | int]
"""One order of a RESERVE batch: [order id, expiry ms (as text), avail_1, gone_1, quantity_1, ...]."""

_batch = msgspec.msgpack.Encoder()


def table(reply: Reply) -> list[Scalar]:
    """The reply of a script that answers with a flat table (ADJUST)."""
    if not isinstance(reply, list):
        raise TypeError(f"expected a table from the script, got {reply!r}")
    return cast(list[Scalar], reply)


def per_order(reply: Reply) -> list[list[Scalar]] | None:
    """RESERVE's reply: a table per order, or None when Redis is not loaded."""
    if not isinstance(reply, list):
        return None
    return cast(list[list[Scalar]], reply)


def avail_key(product_id: uuid.UUID, variant_id: uuid.UUID) -> str:
    return f"inv:a:{product_id}:{variant_id}"


def gone_key(product_id: uuid.UUID) -> str:
    """Set while the product is deleted: its stock may no longer be reserved."""
    return f"inv:g:{product_id}"


@functools.lru_cache(maxsize=8192)
def row_keys(product_id: uuid.UUID, variant_id: uuid.UUID) -> tuple[str, str]:
    """A stock row's availability key and its product's deleted marker, remembered: a hot product's keys
    are formatted once rather than for every order (str() of a uuid.UUID is pure Python)."""
    return avail_key(product_id, variant_id), gone_key(product_id)


def reservation_key(order_id: uuid.UUID) -> str:
    return f"{RESERVATION_PREFIX}{order_id}"


def reserve_call(orders: Sequence[Order], token: str) -> Call:
    """The RESERVE call for a batch of orders; `token` marks this attempt (FINISH undoes only its own)."""
    return [LOADED, DEADLINES], [_batch.encode(orders), token]


# Reserves a batch of orders in one call, each all or nothing, in the batch's order (a repeat of an
# order within the batch finds the first one's reservation). Redis-py packing every argument in Python
# was the cost of a script call per order, so the batch travels as ONE msgpack argument (Redis' Lua
# has cmsgpack): a list of orders, each [order id, expiry ms, avail_1, gone_1, quantity_1, ...]. Each
# row's availability is read once per batch and written back once at its end, so a hot product costs
# two commands per batch instead of two per order.
# KEYS: loaded, deadlines; ARGV: the orders (msgpack), the batch's attempt token
# -> 'NOT_LOADED' | a reply per order: {'OK'} | {'EXISTS', state, expiry} | {'MISSING', i...}
#    | {'SHORT', i, available...} (available -1: the product is deleted)
RESERVE = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 'NOT_LOADED' end
local orders = cmsgpack.unpack(ARGV[1])
local available, gone, changed, replies, deadlines = {{}}, {{}}, {{}}, {{}}, {{}}
for o = 1, #orders do
  local order = orders[o]
  local id, expiry = order[1], order[2]
  local reservation = '{RESERVATION_PREFIX}' .. id
  local state = redis.call('HGET', reservation, 's')
  if state then
    replies[o] = {{'EXISTS', state, redis.call('HGET', reservation, 'x')}}
  else
    local n = (#order - 2) / 3
    local missing, short, wanted = {{'MISSING'}}, {{'SHORT'}}, {{}}
    for i = 1, n do
      local key, gone_key = order[3 * i], order[3 * i + 1]
      local have = available[key]
      if have == nil then
        have = tonumber(redis.call('GET', key)) or false
        available[key] = have
      end
      if gone[gone_key] == nil then gone[gone_key] = redis.call('EXISTS', gone_key) == 1 end
      -- Summed per row, so an order naming a row twice cannot take more than it has.
      wanted[key] = (wanted[key] or 0) + order[3 * i + 2]
      if not have then
        missing[#missing + 1] = i
      elseif gone[gone_key] then
        short[#short + 1] = i
        short[#short + 1] = -1
      elseif have < wanted[key] then
        short[#short + 1] = i
        short[#short + 1] = have
      end
    end
    if #missing > 1 then
      replies[o] = missing
    elseif #short > 1 then
      replies[o] = short
    else
      local keys, quantities = {{}}, {{}}
      for i = 1, n do
        local key = order[3 * i]
        available[key] = available[key] - order[3 * i + 2]
        changed[key] = true
        keys[i] = key
        quantities[i] = order[3 * i + 2]
      end
      redis.call('HSET', reservation, 's', 'RESERVED', 'x', expiry, 't', ARGV[2],
                 'k', table.concat(keys, ' '), 'q', table.concat(quantities, ' '))
      deadlines[#deadlines + 1] = expiry
      deadlines[#deadlines + 1] = id
      replies[o] = {{'OK'}}
    end
  end
end
for key in pairs(changed) do redis.call('SET', key, string.format('%d', available[key])) end
-- In slices: unpack() is bounded by Lua's stack.
for i = 1, #deadlines, 2000 do
  redis.call('ZADD', KEYS[2], unpack(deadlines, i, math.min(i + 1999, #deadlines)))
end
return replies
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
