"""A shared tier behind guards: it can make a request faster, never slower than the timeout, never fail.

Every call gets one deadline: PREHEAT_CACHE_TIMEOUT_MS per round trip it needs (one for up to 100
keys read, or 25 items written to DynamoDB), so a single text waits at most the timeout. A failure or timeout is counted
(CacheErrors), logged once when the tier goes away and once when it comes back, and opens a circuit
breaker so that the next requests skip the tier entirely until a probe finds it healthy again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from functions.cache.breaker import Breaker
from functions.cache.errors import TierError
from functions.cache.metrics import CacheMetrics

log = logging.getLogger("preheat")

# Budget of the connect + first round trip at init (requests arriving meanwhile wait at most the
# timeout for it, then go without the tier): long enough for a cross-region TLS handshake, short
# enough that a hung node is given up on quickly. Fetching credentials has a budget of its own.
PREPARE_MIN_SECONDS = 1.0


class SharedTier(Protocol):
    name: str
    # Keys per round trip: a call gets one timeout per round trip it needs, so that a large
    # request to a healthy tier is not mistaken for an outage.
    read_batch: int
    write_batch: int

    def prepare(self, budget: float) -> None:
        """Connect and make one round trip, in at most `budget` seconds of network time."""
        ...

    def get_many(self, keys: Sequence[str], deadline: float) -> list[bytes | None]: ...

    def put_many(self, items: Sequence[tuple[str, bytes]], expires_at: int, deadline: float) -> None: ...

    def close(self) -> None: ...


class Guarded:
    def __init__(
        self,
        tier: SharedTier,
        *,
        timeout_seconds: float,
        metrics: CacheMetrics,
        breaker: Breaker | None = None,
    ) -> None:
        self.tier = tier
        self.name = tier.name
        self.timeout = timeout_seconds
        self.metrics = metrics
        self.breaker = breaker or Breaker()
        self.longest_call = 0.0  # seconds: the most any request waited on this tier (benchmarks)
        self._ready = threading.Event()
        # Connecting (TCP, TLS, credentials) overlaps model loading instead of the first request.
        threading.Thread(target=self._prepare, name=f"preheat-cache-{self.name}", daemon=True).start()

    def _prepare(self) -> None:
        try:
            self.tier.prepare(max(PREPARE_MIN_SECONDS, 10 * self.timeout))
        except Exception as exc:
            self._failed(exc, "connect")
        finally:
            self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def _admit(self, items: int, batch: int) -> float | None:
        """The call's deadline, or None when the tier is to be skipped."""
        deadline = time.monotonic() + self.timeout * max(1, -(-items // batch))
        if not self._ready.is_set() and not self._ready.wait(self.timeout):
            return None  # still connecting at init: not an error, just not yet
        if not self.breaker.allow():
            return None
        return deadline

    def get_many(self, keys: Sequence[str]) -> list[bytes | None] | None:
        """Values in key order (None for absent keys), or None when the tier was skipped or failed."""
        started = time.monotonic()
        deadline = self._admit(len(keys), self.tier.read_batch)
        if deadline is None:
            return None
        try:
            values = self.tier.get_many(keys, deadline)
        except Exception as exc:
            self._waited(started)
            self._failed(exc, "read")
            return None
        self._waited(started)
        self._succeeded()
        return values

    def put_many(self, items: Sequence[tuple[str, bytes]], expires_at: int) -> bool:
        started = time.monotonic()
        deadline = self._admit(len(items), self.tier.write_batch)
        if deadline is None:
            return False
        try:
            self.tier.put_many(items, expires_at, deadline)
        except Exception as exc:
            self._waited(started)
            self._failed(exc, "write")
            return False
        self._waited(started)
        self._succeeded()
        return True

    def _waited(self, started: float) -> None:
        self.longest_call = max(self.longest_call, time.monotonic() - started)

    def _failed(self, exc: Exception, what: str) -> None:
        self.metrics.count(self.name, errors=1)
        if self.breaker.failure():
            # Once per outage; a bug (not a TierError) gets its traceback.
            log.warning(
                "cache tier %s unavailable (%s failed: %s): serving without it, retrying in ~%.0f s",
                self.name,
                what,
                exc,
                self.breaker.base_seconds,
                exc_info=not isinstance(exc, TierError),
            )
        else:
            log.debug("cache tier %s: %s failed: %s", self.name, what, exc)

    def _succeeded(self) -> None:
        if self.breaker.success():
            log.info(
                "cache tier %s is back after %.1f s",
                self.name,
                time.monotonic() - self.breaker.opened_at,
            )

    def close(self) -> None:
        self.tier.close()


class BackgroundWriter:
    """Writes to the shared tier after the response, on a thread of its own, for long-lived servers.

    Bounded: when the tier cannot keep up, new writes are dropped (a lost write costs a future hit,
    never a wrong answer). Not for Lambda, which freezes the process as soon as the response is
    sent: see CacheSettings.write."""

    def __init__(self, guarded: Guarded, *, max_pending: int = 1024, batch: int = 25) -> None:
        self.guarded = guarded
        self.batch = batch
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, bytes, int]] = queue.Queue(maxsize=max_pending)
        threading.Thread(target=self._run, name=f"preheat-cache-{guarded.name}-writer", daemon=True).start()

    def submit(self, items: Sequence[tuple[str, bytes]], expires_at: int) -> None:
        for key, value in items:
            try:
                self._queue.put_nowait((key, value, expires_at))
            except queue.Full:
                self.dropped += 1

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            pending = [first]
            while len(pending) < self.batch:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.guarded.put_many([(k, v) for k, v, _ in pending], min(e for _, _, e in pending))
            finally:
                for _ in pending:
                    self._queue.task_done()

    def drain(self) -> None:
        """Wait until every submitted write has been attempted (tests and benchmarks)."""
        self._queue.join()
