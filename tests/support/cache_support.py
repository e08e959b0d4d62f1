"""Helpers for the cache tests: a real tiny embedder wrapped so that its model runs can be counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from functions.cache import TextCache
from functions.cache.metrics import CacheMetrics
from functions.cache.settings import CacheSettings
from functions.cache.shared import Guarded, SharedTier
from functions.cache.tiered import CachedRows
from functions.inference import manifest as manifests
from functions.inference.manifest import Manifest
from functions.inference.runtime import open_task
from functions.inference.tasks.embedding import EmbeddingTask
from functions.inference.tasks.text import Item, Rows, TextModel, text_keyspace


def load_tiny(model_dir: Path, *, truncate: bool = True) -> tuple[TextModel, Manifest]:
    """The tiny embedder's uncached rows (what the cache wraps), as the runtime builds them."""
    manifest = manifests.load(model_dir)
    task = open_task(model_dir, manifest=manifest, truncate=truncate)
    assert isinstance(task, EmbeddingTask)
    return task.model, manifest


class Counting:
    """The real model's rows, recording which texts reached the model; optionally slowed down (to
    hold a miss open while other threads arrive) or failing on its first call."""

    def __init__(self, inner: TextModel, *, delay: float = 0.0, fail_first: bool = False) -> None:
        self.inner = inner
        self.width = inner.width
        self.delay = delay
        self.fail_first = fail_first
        self.calls: list[list[Item]] = []
        self._lock = threading.Lock()

    @property
    def texts(self) -> list[Item]:
        return [t for call in self.calls for t in call]

    def rows(self, texts: Sequence[Item]) -> Rows:
        with self._lock:
            self.calls.append(list(texts))
            fail = self.fail_first and len(self.calls) == 1
        time.sleep(self.delay)
        if fail:
            raise RuntimeError("the model failed")
        return self.inner.rows(texts)


def build(
    inner: Any,
    manifest: Manifest,
    *,
    tier: SharedTier | None = None,
    truncate: bool = True,
    service: str = "preheat-test",
    **settings: Any,
) -> CachedRows:
    """A cache as Runtime.load builds it, with metrics flushed after every request.

    The shared-tier timeout defaults to 1 s, not 25 ms: on a busy CI machine a healthy local Redis
    can take longer than 25 ms, and tests about behaviour must not depend on the machine's load.
    Tests about timeouts set their own."""
    s = CacheSettings(**{"metrics_interval_seconds": 0.0, "timeout_ms": 1000, **settings})
    metrics = CacheMetrics(service=service, namespace="PreheatTest", interval=s.metrics_interval_seconds)
    shared = Guarded(tier, timeout_seconds=s.timeout_ms / 1000, metrics=metrics) if tier is not None else None
    if shared is not None:
        shared.wait_ready(10)
    cache = TextCache(
        s,
        text_keyspace(manifest, truncate=truncate),
        metrics=metrics,
        shared=shared,
    )
    return cache.wrap(inner)


def cache_counts(blobs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Sum CacheHits/CacheMisses/CacheErrors per level over EMF blobs: {level: [hits, misses, errors]}."""
    totals: dict[str, list[float]] = {}
    for blob in blobs:
        # Cache blobs only: an invocation's blob carries its log record, whose "level" is INFO.
        if "level" not in blob or not any(n in blob for n in ("CacheHits", "CacheMisses", "CacheErrors")):
            continue
        row = totals.setdefault(blob["level"], [0.0, 0.0, 0.0])
        for i, name in enumerate(("CacheHits", "CacheMisses", "CacheErrors")):
            row[i] += sum(blob.get(name, [0.0]))
    return totals
