"""CacheHits, CacheMisses, CacheErrors (Count) per level, as EMF on stdout.

Dimensions: `service` and `level` (memory | dynamodb | redis). All metrics of one EMF blob share its
dimension values, so each level gets its own blob, written by the runtime's Powertools-compatible
EmfWriter; the runtime's per-invocation blob (dimension `start`) stays as it is.

Counts are added up in memory and flushed by the first request that ends at least `interval` after
the previous flush (PREHEAT_CACHE_METRICS_INTERVAL_MS, default 1000): a blob is cheap to write but
not free next to an in-process hit (~15 µs), and one blob per level per second carries the same sums
to CloudWatch as one per request. An instance that sees a request now and then flushes on each of
them. interval=0 flushes after every request.

On Lambda, the counts since the last flush are not lost when an instance gets no further request:
they are flushed when Lambda ends the execution environment (functions/metrics/shutdown.py: SIGTERM
in the shutdown phase, which Lambda grants once an extension is registered). That costs the warm
path nothing, where counting per request (a blob after every request) costs a line each time; the
A/B is `preheat bench metrics`. A long-lived server (SageMaker, `preheat serve`) flushes on the
interval only: what its last second counted waits for its next request.
"""

from __future__ import annotations

import threading
import time

from functions.metrics import shutdown
from functions.metrics.emf import COUNT, EmfWriter

LEVELS = ("memory", "dynamodb", "redis")
NAMES = ("CacheHits", "CacheMisses", "CacheErrors")


class CacheMetrics:
    def __init__(self, *, service: str, namespace: str, interval: float = 1.0) -> None:
        self.service = service
        self.namespace = namespace
        self.interval = interval
        self._emf = EmfWriter(namespace, {"service": service})
        self._counts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._counted_at = 0.0  # when the last pending count was made: what its blob is stamped with
        shutdown.at_environment_end(self.flush)  # on Lambda; elsewhere it does nothing

    def count(self, level: str, *, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
        with self._lock:
            counts = self._counts.get(level)
            if counts is None:
                counts = self._counts[level] = [0, 0, 0]
            counts[0] += hits
            counts[1] += misses
            counts[2] += errors
            self._counted_at = time.time()

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._last_flush = time.monotonic()
            # Stamped with the last count's time, not the flush's: a shutdown phase may come minutes
            # after the requests it reports, and CloudWatch files a metric under its timestamp.
            for level, values in counts.items():
                self._emf.emit(
                    {name: (value, COUNT) for name, value in zip(NAMES, values, strict=True)},
                    {"level": level},
                    self._counted_at,
                )
