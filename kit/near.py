"""Values of versioned cache namespaces held in the process, for as long as Redis says they are current.

A versioned value (`kit.cache`: the namespace's counter, then `ns:v<version>:key`) changes only when its
namespace's counter does. The lane's connection asks Redis to track the keys it reads (`CLIENT
TRACKING`, RESP3): when a counter it read changes, is deleted or expires, Redis pushes an `invalidate`
message naming it on that connection, and the namespace's values are dropped here. A hit is then a
dictionary lookup, no round trip.

Nothing is kept that may have missed its invalidation: a value is stored only if no invalidation
arrived while its lookup was in flight (`epoch`), and everything is dropped when the connection is
lost or dialled again (Redis forgets what it tracked for a closed connection). A write of this
process drops its namespace at once as well (`kit.cache.Cache.bump`), so the process reads its own
writes; another process's write is seen as soon as its push is read, normally before any request that
follows the write reaches this process.

The values are bytes in per-namespace dictionaries of strings to bytes, which the cyclic collector does
not track: a full near cache adds no work to a collection (perf/README.md, "Collector pauses").
"""

from __future__ import annotations

from collections.abc import Iterable

# The most value bytes kept in a process (the demo catalog's packed details are ~20 MiB); beyond it,
# the namespaces stored first are dropped first.
MAX_BYTES = 64 * 1024 * 1024


class NearCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.values: dict[str, dict[str, bytes]] = {}
        self.size = 0
        # Moves on with every invalidation: a lookup begun at an older epoch stores nothing.
        self.epoch = 0

    def get(self, namespace: str, key: str) -> bytes | None:
        held = self.values.get(namespace)
        return None if held is None else held.get(key)

    def put(self, namespace: str, key: str, value: bytes, epoch: int) -> None:
        """Keep `value`, read by a lookup sent at `epoch`, unless something was invalidated since."""
        if epoch != self.epoch:
            return
        held = self.values.get(namespace)
        if held is None:
            held = self.values[namespace] = {}
        previous = held.get(key)
        held[key] = value
        self.size += len(value) - (len(previous) if previous is not None else 0)
        while self.size > self.max_bytes and self.values:
            self._drop(next(iter(self.values)))

    def forget(self, namespaces: Iterable[str | bytes] | None) -> None:
        """Drop these namespaces' values (keys as Redis names them in a push), or all of them (None)."""
        self.epoch += 1
        if namespaces is None:
            self.values.clear()
            self.size = 0
            return
        for namespace in namespaces:
            self._drop(namespace.decode() if isinstance(namespace, bytes) else namespace)

    def _drop(self, namespace: str) -> None:
        held = self.values.pop(namespace, None)
        if held is not None:
            self.size -= sum(map(len, held.values()))
