"""Invocation records: one per request to a function or an endpoint, as the platform saw it, kept
in a bounded ring and queried by sequence number (GET /_preheat/invocations)."""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One invocation as the platform saw it (the twin's equivalent of a REPORT line, queryable)."""

    seq: int
    request_id: str
    function: str
    version: str
    qualifier: str | None
    source: str  # invoke | event | url | schedule:<name>
    started_at: float  # epoch seconds
    outcome: str  # ok | error | crash | timeout | init_error | throttled
    cold: bool  # this request waited for an INIT
    instance_id: str | None = None
    instance_kind: str | None = None  # on-demand | provisioned-concurrency
    init_ms: float | None = None  # the INIT this request waited for (cold only)
    duration_ms: float | None = None  # runtime handling time (REPORT's Duration)
    billed_ms: int | None = None
    max_memory_mb: int | None = None
    total_ms: float | None = None  # inside the twin, from arrival to answer
    error_type: str | None = None
    error_message: str | None = None  # what the platform logged for a crash, timeout or failed INIT


class Records:
    def __init__(self, size: int = 20000) -> None:
        self._items: collections.deque[Record] = collections.deque(maxlen=size)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, record: Record) -> None:
        self._items.append(record)

    def since(self, seq: int = 0, function: str | None = None) -> list[Record]:
        return [r for r in self._items if r.seq > seq and (function is None or r.function == function)]

    @property
    def last_seq(self) -> int:
        return self._seq
