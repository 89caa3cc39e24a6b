"""Stock levels: what is available, and setting a row's on-hand and threshold against live reservations."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence

from redis.exceptions import RedisError

from kit.bus import publish
from kit.errors import BusinessRuleViolation, Forbidden, NotFound, ServiceUnavailable
from kit.identity import Identity
from svc_inventory import lua, store
from svc_inventory.core import Core, text
from svc_inventory.schemas import Line
from svc_inventory.wire import LowStockAlert, wire_variant

log = logging.getLogger(__name__)


class StockLevels(Core):
    """Reads and sets stock rows (Seller of the product or Admin)."""

    async def availability(self, lines: Sequence[Line]) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
        """Available units of each line's row, as PostgreSQL has them; unknown rows are absent."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                store.AVAILABILITY, [line.product_id for line in lines], [line.variant_id for line in lines]
            )
        return {(r["product_id"], r["variant_id"]): r["available"] for r in rows}

    async def set_stock(
        self, who: Identity, product_id: uuid.UUID, variant_id: uuid.UUID, quantity: int, threshold: int
    ) -> None:
        """Set on-hand and threshold, atomically against live reservations (Seller of it or Admin)."""
        async with self._writer() as conn:
            delta = 0
            row = None
            try:
                async with conn.transaction():
                    product = await conn.fetchrow(store.PRODUCT, product_id)
                    if product is None or product["deleted_at"] is not None:
                        if not who.is_admin:
                            raise NotFound("Product not found in inventory")
                    elif not who.is_admin and product["seller_id"] != who.user_id:
                        raise Forbidden("Only the product's seller or an Admin may set its stock")
                    row = await conn.fetchrow(store.ROW_FOR_UPDATE, product_id, variant_id)
                    if row is None:
                        result = await conn.fetchrow(
                            store.INSERT_ROW, product_id, variant_id, quantity, threshold
                        )
                        if result is None:
                            raise ServiceUnavailable("The stock row was created concurrently, please retry")
                        moved = quantity
                        flipped = quantity > 0
                    else:
                        if quantity < row["reserved"]:
                            raise BusinessRuleViolation(
                                f"{row['reserved']} units are held by reservations;"
                                " on hand cannot go below that"
                            )
                        delta = quantity - row["on_hand"]
                        if delta < 0:
                            await self._adjust(product_id, variant_id, delta)
                        result = await conn.fetchrow(
                            store.SET_ROW, product_id, variant_id, quantity, threshold, row["low_alerted"]
                        )
                        moved = delta
                        flipped = (result["available"] > 0) != (row["on_hand"] > row["reserved"])
                    await conn.execute(
                        store.INSERT_LOG,
                        [product_id],
                        [variant_id],
                        [None],
                        ["ADJUST"],
                        [moved],
                        [0],
                        ["set"],
                    )
                    events = await self._announce(conn, [product_id] if flipped else [])
                    if result["crossed"]:
                        events.append(
                            LowStockAlert(
                                product_id=product_id,
                                variant_id=wire_variant(variant_id),
                                current_stock=result["available"],
                                threshold=threshold,
                                seller_id=None if product is None else product["seller_id"],
                            )
                        )
                    await publish(conn, *events)
            except BaseException:
                if delta < 0:
                    await self._adjust(product_id, variant_id, -delta, best_effort=True)
                raise
            if row is None:
                # Loaded only now that the row is committed: a key must never promise a row that is not.
                with contextlib.suppress(RedisError, OSError):
                    await self._load(conn, [Line(product_id, variant_id, quantity)])
            elif delta > 0:
                await self._adjust(product_id, variant_id, delta, best_effort=True)

    async def _adjust(
        self, product_id: uuid.UUID, variant_id: uuid.UUID, delta: int, best_effort: bool = False
    ) -> None:
        try:
            result = await self.scripts.call(
                "adjust", [lua.LOADED, lua.avail_key(product_id, variant_id)], [delta]
            )
        except (RedisError, OSError) as exc:
            if not best_effort:
                raise
            log.warning("could not adjust availability in Redis", extra={"error": repr(exc)})
            return
        verdict = text(lua.table(result)[0])
        if verdict == "SHORT":
            raise BusinessRuleViolation("Units are held by reservations; on hand cannot go below that")
        if verdict == "NOT_LOADED":
            self._kick.set()
