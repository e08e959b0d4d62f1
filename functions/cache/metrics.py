"""CacheHits, CacheMisses, CacheErrors (Count) per level, as Powertools EMF on stdout.

Dimensions: `service` and `level` (memory | dynamodb | redis). All metrics of one EMF blob share its
dimension values, so each level gets its own blob; the runtime's per-invocation blob (dimension
`start`) stays as it is.

Counts are added up in memory and flushed by the first request that ends at least `interval` after
the previous flush (PREHEAT_CACHE_METRICS_INTERVAL_MS, default 1000): serialising one blob through
Powertools costs ~80 µs, more than an in-process hit itself, so flushing per request would make every
hit several times slower. Under steady traffic that is one blob per level per second; an instance
that sees a request now and then flushes on each of them. What this can lose is the counts of the
last second before a process ends (Lambda reclaiming an instance that never gets another request,
a server shutting down): a metric, never an answer. interval=0 flushes after every request.
"""

from __future__ import annotations

import threading
import time

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

LEVELS = ("memory", "dynamodb", "redis")
NAMES = ("CacheHits", "CacheMisses", "CacheErrors")


class CacheMetrics:
    def __init__(self, *, service: str, namespace: str, interval: float = 1.0) -> None:
        self.service = service
        self.namespace = namespace
        self.interval = interval
        self._counts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._emitters: dict[str, EphemeralMetrics] = {}

    def count(self, level: str, *, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
        with self._lock:
            counts = self._counts.get(level)
            if counts is None:
                counts = self._counts[level] = [0, 0, 0]
            counts[0] += hits
            counts[1] += misses
            counts[2] += errors

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._last_flush = time.monotonic()
            for level, values in counts.items():
                emitter = self._emitters.get(level)
                if emitter is None:
                    emitter = self._emitters[level] = EphemeralMetrics(
                        namespace=self.namespace, service=self.service, default_dimensions={"level": level}
                    )
                for name, value in zip(NAMES, values, strict=True):
                    emitter.add_metric(name=name, unit=MetricUnit.Count, value=value)
                emitter.flush_metrics()
