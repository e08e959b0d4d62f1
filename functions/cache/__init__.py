"""The cache tier: answer repeats without running the model, never with a wrong or stale answer.

    cache = TextCache.open(keyspace, service=..., namespace=...)  # at init; or None
    rows = cache.wrap(text_model)   # a RowSource: .rows(items) -> Rows(served_by=...)

Any text task's rows are cached (embeddings, label scores); tensor models are not.

Levels: an in-process LRU bounded in bytes (PREHEAT_CACHE_MEMORY_BYTES, default 64 MiB), then a
shared tier, DynamoDB (PREHEAT_CACHE_TABLE) or Redis (PREHEAT_CACHE_REDIS_URL). Settings: settings.py.
The shared-tier clients are imported only when one is configured: the default path costs nothing
heavier than the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from functions.cache.keys import KeySpace
from functions.cache.memory import MemoryCache
from functions.cache.metrics import CacheMetrics
from functions.cache.settings import CacheSettings
from functions.cache.tiered import CachedRows
from functions.rows import RowSource

if TYPE_CHECKING:
    from functions.cache.shared import Guarded, SharedTier

__all__ = ["CacheSettings", "CachedRows", "KeySpace", "TextCache", "open_shared_tier"]


def open_shared_tier(settings: CacheSettings, env: Mapping[str, str] | None = None) -> SharedTier | None:
    if settings.table:
        from functions.cache.dynamodb import DynamoTier

        return DynamoTier(settings.table, region=settings.region, endpoint_url=settings.endpoint_url, env=env)
    if settings.redis_url:
        from functions.cache.redis import RedisTier

        return RedisTier(settings.redis_url)
    return None


class TextCache:
    """The cache of one text model. Opened early in init so that the shared tier connects while the
    model loads; wraps the task's rows once the task exists."""

    def __init__(
        self,
        settings: CacheSettings,
        keyspace: KeySpace,
        *,
        metrics: CacheMetrics,
        shared: Guarded | None,
    ) -> None:
        self.settings = settings
        self.keyspace = keyspace
        self.metrics = metrics
        self.shared = shared

    @classmethod
    def open(
        cls,
        keyspace: KeySpace,
        *,
        service: str,
        namespace: str,
        settings: CacheSettings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TextCache | None:
        """None when no level is configured. `keyspace` names the model variant whose rows are cached
        (the runtime derives it from its manifest). Bad settings raise ConfigError naming the variable."""
        settings = CacheSettings.from_env(env) if settings is None else settings
        if not settings.enabled:
            return None
        metrics = CacheMetrics(
            service=service, namespace=namespace, interval=settings.metrics_interval_seconds
        )
        tier = open_shared_tier(settings, env)
        shared = None
        if tier is not None:
            from functions.cache.shared import Guarded

            shared = Guarded(tier, timeout_seconds=settings.timeout_ms / 1000, metrics=metrics)
        return cls(
            settings,
            keyspace,
            metrics=metrics,
            shared=shared,
        )

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the shared tier's background connect (benchmarks, tests); True if there is none."""
        return self.shared.wait_ready(timeout) if self.shared is not None else True

    def wrap(self, source: RowSource) -> CachedRows:
        s = self.settings
        return CachedRows(
            source,
            self.keyspace,
            memory=MemoryCache(s.memory_bytes) if s.memory_bytes > 0 else None,
            shared=self.shared,
            metrics=self.metrics,
            ttl_seconds=s.ttl_seconds,
            max_value_bytes=s.max_value_bytes,
            background_writes=s.write == "background",
        )
