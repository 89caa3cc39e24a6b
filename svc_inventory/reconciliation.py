"""Rebuild and reconciliation: Redis overwritten from PostgreSQL under the exclusive stock lock (engine.py,
rule 2), in full when Redis lost its state, else only where the two drifted apart."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter
from redis.asyncio.client import Pipeline

from svc_inventory import lua, store
from svc_inventory.core import EXPIRED, RESERVED, Core, key_of, lines_of, text

drift = Counter(
    "shop_inventory_drift_total",
    "Differences between Redis and PostgreSQL found (and repaired) by the reconciliation",
    ["kind"],
)
drift_units = Counter("shop_inventory_drift_units_total", "Units of availability repaired in Redis")
rebuilds = Counter("shop_inventory_rebuilds_total", "Full rebuilds of Redis from PostgreSQL")

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SyncReport:
    rebuilt: bool = False
    availability_drift: int = 0
    units_repaired: int = 0
    reservation_drift: int = 0


class Reconciliation(Core):
    """Brings Redis back in step with PostgreSQL."""

    async def sync(self) -> SyncReport:
        """Rebuild Redis from PostgreSQL when it lost its state, else find and repair drift."""
        report = SyncReport()
        async with self.pool.acquire() as conn:
            await conn.execute(store.LOCK_EXCLUSIVE, store.STOCK_LOCK)
            try:
                rows = await conn.fetch(store.ALL_ROWS)
                active = await conn.fetch(store.ACTIVE_RESERVATIONS)
                if not await self.redis.exists(lua.LOADED):
                    await self._rebuild(rows, active)
                    report.rebuilt = True
                else:
                    await self._repair(conn, rows, active, report)
            finally:
                if not conn.is_closed():
                    await conn.execute(store.UNLOCK_EXCLUSIVE, store.STOCK_LOCK)
        return report

    @staticmethod
    def _hold(pipe: Pipeline, row: asyncpg.Record) -> None:
        lines = lines_of(row)
        order = str(row["order_id"])
        pipe.hset(
            lua.reservation_key(row["order_id"]),
            mapping={
                "s": RESERVED,
                "x": row["expires_ms"],
                "t": "",
                "k": " ".join(key_of(line) for line in lines),
                "q": " ".join(str(line.quantity) for line in lines),
            },
        )
        pipe.zadd(lua.DEADLINES, {order: row["expires_ms"]})

    async def _rebuild(self, rows: list[asyncpg.Record], active: list[asyncpg.Record]) -> None:
        stale = [key async for key in self.redis.scan_iter(match="inv:*", count=1000)]
        for i in range(0, len(stale), 1000):
            await self.redis.unlink(*stale[i : i + 1000])
        pipe = self.redis.pipeline(transaction=False)
        for n, row in enumerate(rows, 1):
            pipe.set(lua.avail_key(row["product_id"], row["variant_id"]), row["available"])
            if row["deleted"]:
                pipe.set(lua.gone_key(row["product_id"]), 1)
            if n % 2000 == 0:
                await pipe.execute()
        for row in active:
            self._hold(pipe, row)
        pipe.set(lua.LOADED, int(time.time()))
        await pipe.execute()
        rebuilds.inc()
        log.info("rebuilt Redis from PostgreSQL", extra={"rows": len(rows), "reservations": len(active)})

    async def _repair(
        self,
        conn: asyncpg.Connection,
        rows: list[asyncpg.Record],
        active: list[asyncpg.Record],
        report: SyncReport,
    ) -> None:
        # Reservations: Redis holds exactly PostgreSQL's active ones (availability is set below).
        in_redis = {text(o) for o in await self.redis.zrange(lua.DEADLINES, 0, -1)}
        in_pg = {str(row["order_id"]): row for row in active}
        pipe = self.redis.pipeline(transaction=False)
        extra = [uuid.UUID(o) for o in in_redis - set(in_pg)]
        states = {r["order_id"]: r["state"] for r in await conn.fetch(store.STATES, extra)} if extra else {}
        for order_id in extra:
            pipe.hset(lua.reservation_key(order_id), "s", states.get(order_id, EXPIRED))
            pipe.pexpire(lua.reservation_key(order_id), lua.FINISHED_TTL_MS)
            pipe.zrem(lua.DEADLINES, str(order_id))
        for order in set(in_pg) - in_redis:
            self._hold(pipe, in_pg[order])
        report.reservation_drift = len(extra) + len(set(in_pg) - in_redis)
        keys = [lua.avail_key(row["product_id"], row["variant_id"]) for row in rows]
        seen: list[bytes | str | None] = []
        for i in range(0, len(keys), 2000):
            seen += await self.redis.mget(keys[i : i + 2000])
        for key, row, value in zip(keys, rows, seen, strict=True):
            if row["deleted"]:
                pipe.set(lua.gone_key(row["product_id"]), 1)
            if value is not None and int(value) != row["available"]:
                report.availability_drift += 1
                report.units_repaired += abs(int(value) - row["available"])
                pipe.set(key, row["available"])
        await pipe.execute()
        if report.reservation_drift:
            drift.labels("reservation").inc(report.reservation_drift)
        if report.availability_drift:
            drift.labels("availability").inc(report.availability_drift)
            drift_units.inc(report.units_repaired)
            log.warning(
                "repaired drift between Redis and PostgreSQL",
                extra={"rows": report.availability_drift, "units": report.units_repaired},
            )
