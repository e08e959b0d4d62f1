"""CachedRows: a text task's RowSource with the cache levels in front of the model.

For each item (a text, or a pair of texts): the in-process LRU, then the shared tier (DynamoDB or
Redis), then the model, which runs once for all the items nobody had, and once per instance for an
item that several threads miss at the same moment. Every row computed is kept in memory and written
to the shared tier. The rows are whatever the task's head makes: embeddings, or label scores.

`served_by` names the slowest level a request had to reach: `miss` if the model ran for any of its
items, else the shared tier's name if any item came from there, else `memory`. A thread that waited
for another thread's model run reports where that answer came from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from functions.cache import codec
from functions.cache.codec import Entry
from functions.cache.flights import Flights
from functions.cache.keys import Key, KeySpace
from functions.cache.memory import MemoryCache
from functions.cache.metrics import CacheMetrics
from functions.errors import PreheatError
from functions.rows import Item, Rows, RowSource

if TYPE_CHECKING:  # the shared-tier machinery is imported only when a shared tier is configured
    from functions.cache.shared import Guarded

log = logging.getLogger("preheat")

MISS = "miss"
MEMORY = "memory"


class CachedRows:
    def __init__(
        self,
        inner: RowSource,
        keyspace: KeySpace,
        *,
        memory: MemoryCache | None,
        shared: Guarded | None,
        metrics: CacheMetrics,
        ttl_seconds: int,
        max_value_bytes: int,
        background_writes: bool = False,
    ) -> None:
        self.inner = inner
        self.keyspace = keyspace
        self.width = inner.width
        self.memory = memory
        self.shared = shared
        self.metrics = metrics
        self.ttl_seconds = ttl_seconds
        self.writer = None
        if shared is not None and background_writes:
            from functions.cache.shared import BackgroundWriter

            self.writer = BackgroundWriter(shared)
        self._flights: Flights[tuple[Entry, str]] = Flights()
        self.value_bytes = codec.size_of(self.width)
        # Every row of a model has the same size, so "too large to cache" is decided once.
        self.cacheable = self.value_bytes <= max_value_bytes
        if not self.cacheable:
            log.warning(
                "cache off for this model: its answers are %d bytes, over PREHEAT_CACHE_MAX_VALUE_BYTES=%d",
                self.value_bytes,
                max_value_bytes,
            )

    def rows(self, texts: Sequence[Item]) -> Rows:
        if not self.cacheable:
            return self.inner.rows(texts)
        now = time.time()
        # One lookup per distinct item: an item repeated inside a request is computed once.
        by_text: dict[Item, Key] = {}
        for text in texts:
            if text not in by_text:
                by_text[text] = self.keyspace.key_of(text)
        keys = list(by_text.values())
        found: dict[bytes, tuple[Entry, str]] = {}
        if self.memory is not None:
            hits = 0
            for key, entry in zip(keys, self.memory.get_many([k.digest for k in keys], now), strict=True):
                if entry is not None:
                    found[key.digest] = (entry, MEMORY)
                    hits += 1
            self.metrics.count(MEMORY, hits=hits, misses=len(keys) - hits)
        missing = [k for k in keys if k.digest not in found]
        if missing:
            source = {key.digest: text for text, key in by_text.items()}
            try:
                self._fill(missing, source, found, now)
            except PreheatError:
                # The model refused one of the texts (e.g. too long with PREHEAT_TRUNCATE=false): let it
                # refuse the whole request as it would uncached, so the error names the right index.
                return self.inner.rows(texts)
        self.metrics.maybe_flush()
        vectors = np.empty((len(texts), self.width), dtype=np.float32)
        tokens: list[int] = []
        levels: set[str] = set()
        for i, text in enumerate(texts):
            entry, level = found[by_text[text].digest]
            vectors[i] = entry.vector
            tokens.append(entry.tokens)
            levels.add(level)
        served_by = MISS if MISS in levels else next((lv for lv in levels if lv != MEMORY), MEMORY)
        return Rows(values=vectors, tokens=tuple(tokens), served_by=served_by)

    def _fill(
        self, missing: list[Key], source: dict[bytes, Item], found: dict[bytes, tuple[Entry, str]], now: float
    ) -> None:
        by_digest = {k.digest: k for k in missing}
        owned_digests, waiting = self._flights.claim(list(by_digest))
        owned = [by_digest[d] for d in owned_digests]
        try:
            if owned:
                self._fill_owned(owned, source, found, now)
        finally:
            for key in owned:
                self._flights.resolve(key.digest, found.get(key.digest))
        leftovers: list[Key] = []
        for digest, flight in waiting:
            flight.done.wait()
            if flight.value is None:
                leftovers.append(by_digest[digest])  # its owner failed: compute it here
            else:
                found[digest] = flight.value
        if leftovers:
            self._compute(leftovers, source, found, now)

    def _fill_owned(
        self, owned: list[Key], source: dict[bytes, Item], found: dict[bytes, tuple[Entry, str]], now: float
    ) -> None:
        compute = owned
        if self.shared is not None:
            values = self.shared.get_many([k.text for k in owned])
            if values is not None:
                compute = []
                hits = 0
                for key, value in zip(owned, values, strict=True):
                    entry = None
                    if value is not None:
                        entry = codec.decode(
                            value,
                            dims=self.width,
                            model_digest=self.keyspace.model_digest,
                            key_digest=key.digest,
                            now=now,
                        )
                    if entry is None:
                        compute.append(key)
                    else:
                        hits += 1
                        found[key.digest] = (entry, self.shared.name)
                        if self.memory is not None:
                            self.memory.put(key.digest, entry)
                self.metrics.count(self.shared.name, hits=hits, misses=len(owned) - hits)
        if compute:
            self._compute(compute, source, found, now)

    def _compute(
        self, keys: list[Key], source: dict[bytes, Item], found: dict[bytes, tuple[Entry, str]], now: float
    ) -> None:
        result = self.inner.rows([source[k.digest] for k in keys])
        expires_at = int(now) + self.ttl_seconds
        writes: list[tuple[str, bytes]] = []
        for key, vector, tokens in zip(keys, result.values, result.tokens, strict=True):
            entry = Entry(
                vector=np.array(vector, dtype=np.float32), tokens=int(tokens), expires_at=expires_at
            )
            found[key.digest] = (entry, MISS)
            if self.memory is not None:
                self.memory.put(key.digest, entry)
            if self.shared is not None:
                writes.append(
                    (
                        key.text,
                        codec.encode(
                            entry.vector,
                            tokens=entry.tokens,
                            expires_at=expires_at,
                            model_digest=self.keyspace.model_digest,
                            key_digest=key.digest,
                        ),
                    )
                )
        if writes and self.shared is not None:
            if self.writer is not None:
                self.writer.submit(writes, expires_at)
            else:
                self.shared.put_many(writes, expires_at)
