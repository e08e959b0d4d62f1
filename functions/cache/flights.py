"""Single flight: when several threads miss the same key at once, one computes and the others wait.

uvicorn and the SageMaker container serve requests on threads; without this, a burst of identical
requests right after a deploy would run the model once per request instead of once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Flight(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None  # None after wait(): the leader failed, compute it yourself


class Flights(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[bytes, Flight[T]] = {}

    def claim(self, keys: Sequence[bytes]) -> tuple[list[bytes], list[tuple[bytes, Flight[T]]]]:
        """Split `keys` into those this thread now owns (it must resolve every one of them, in a
        `finally`) and those another thread is already computing (wait on their flights)."""
        owned: list[bytes] = []
        waiting: list[tuple[bytes, Flight[T]]] = []
        with self._lock:
            for key in keys:
                flight = self._inflight.get(key)
                if flight is None:
                    self._inflight[key] = Flight()
                    owned.append(key)
                else:
                    waiting.append((key, flight))
        return owned, waiting

    def resolve(self, key: bytes, value: T | None) -> None:
        """Hand `value` to the waiters (None tells them to compute it themselves) and forget the key."""
        with self._lock:
            flight = self._inflight.pop(key, None)
        if flight is not None:
            flight.value = value
            flight.done.set()

    def __len__(self) -> int:
        return len(self._inflight)
