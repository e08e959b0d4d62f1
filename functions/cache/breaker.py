"""A circuit breaker for the shared tier: after a failure, skip the tier for a while, then let one
request probe it. Backoff doubles on every failed probe (1 s -> 30 s, with jitter so a fleet of
instances does not probe in step) and resets on the first success.

It opens on the first failure: the tier is an optimisation, so a single timeout is reason enough to
stop paying for it, and a request never waits on a tier already known to be sick.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class Breaker:
    def __init__(
        self,
        *,
        base_seconds: float = 1.0,
        max_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self._open = False
        self._probing = False
        self._failures = 0
        self._retry_at = 0.0
        self.opened_at = 0.0

    @property
    def is_open(self) -> bool:
        return self._open

    def allow(self) -> bool:
        """May this call use the tier? While open, one caller at a time is let through as a probe."""
        if not self._open:
            return True
        with self._lock:
            if not self._open:
                return True
            if self._probing or self._clock() < self._retry_at:
                return False
            self._probing = True
            return True

    def success(self) -> bool:
        """Record a good call. True when it closes an open breaker (the probe found the tier back).

        A call that was already in flight when the breaker opened and then succeeded proves little
        (the failure came later): only the probe closes it."""
        if not self._open:
            return False
        with self._lock:
            if not (self._open and self._probing):
                return False
            self._open = self._probing = False
            self._failures = 0
            return True

    def failure(self) -> bool:
        """Record a failed call. True when it opens a closed breaker (the tier just went away).

        Only the first failure and failed probes move the backoff: calls that were already in flight
        when the breaker opened fail too, and must not push the next probe further out."""
        with self._lock:
            now = self._clock()
            if not self._open:
                self._open = True
                self.opened_at = now
                self._failures = 1
                self._schedule(now)
                return True
            if self._probing:
                self._probing = False
                self._failures += 1
                self._schedule(now)
            return False

    def _schedule(self, now: float) -> None:
        backoff = min(self.max_seconds, self.base_seconds * 2 ** (self._failures - 1))
        self._retry_at = now + backoff * (0.8 + 0.4 * self._jitter())
