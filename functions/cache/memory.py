"""The in-process level: an LRU bounded in bytes, per instance, alive between warm invocations.

Bounded in bytes rather than entries because a Lambda function's memory is its budget: the same
64 MiB holds ~35,000 384-dim answers or ~4,000 4096-dim ones. Entries keep their expiry, so this
level never serves an answer the shared tier would already consider stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from functions.cache.codec import Entry

# What an entry costs beyond its float32 values, measured with tracemalloc on CPython 3.11 (20,000
# 384-dim entries): the ndarray, the Entry tuple, the 32-byte key and the dict slot come to ~325
# bytes; rounded up so the bound errs on the safe side.
ENTRY_OVERHEAD = 352


def cost(entry: Entry) -> int:
    return int(entry.vector.nbytes) + ENTRY_OVERHEAD


class MemoryCache:
    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, digests: Sequence[bytes], now: float) -> list[Entry | None]:
        found: list[Entry | None] = []
        with self._lock:
            entries = self._entries
            for digest in digests:
                entry = entries.get(digest)
                if entry is not None:
                    if entry.expires_at <= now:
                        del entries[digest]
                        self._bytes -= cost(entry)
                        entry = None
                    else:
                        entries.move_to_end(digest)
                found.append(entry)
        return found

    def put(self, digest: bytes, entry: Entry) -> bool:
        """False when the entry is larger than the whole cache (it is then not kept)."""
        size = cost(entry)
        if size > self.capacity_bytes:
            return False
        entry.vector.flags.writeable = False  # callers get copies; nobody may edit a cached answer
        with self._lock:
            old = self._entries.pop(digest, None)
            if old is not None:
                self._bytes -= cost(old)
            self._entries[digest] = entry
            self._bytes += size
            while self._bytes > self.capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= cost(evicted)
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
