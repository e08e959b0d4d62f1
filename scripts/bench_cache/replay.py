"""One phase of the cache bench: the stream replayed through a fleet, each answer's latency kept by
the level that served it, and the figures of one level."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 4)


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)  # served_by -> seconds
    failures: int = 0

    def add(self, served_by: str, seconds: float) -> None:
        self.latencies.setdefault(served_by, []).append(seconds)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + self.failures

    def level(self, level: str, before: tuple[str, ...]) -> dict[str, Any]:
        """Figures of one level: lookups reaching it are the requests no earlier level answered."""
        hits = self.latencies.get(level, [])
        misses = self.latencies.get("miss", [])
        reached = self.requests - sum(len(self.latencies.get(b, [])) for b in before)
        return {
            "requests": self.requests,
            "hits": len(hits),
            "hit_rate": round(len(hits) / reached, 4) if reached else None,
            "share": round(len(hits) / self.requests, 4) if self.requests else None,
            "hit_p50_ms": ms(pct(hits, 50)),
            "hit_p99_ms": ms(pct(hits, 99)),
            "miss_p50_ms": ms(pct(misses, 50)),
            "miss_p99_ms": ms(pct(misses, 99)),
        }


def replay(phase: Phase, fleet: list[Any], texts: list[str], stream: list[int], progress: Any) -> None:
    clock = time.perf_counter
    task = progress.add_task(phase.name, total=len(stream))
    for i, index in enumerate(stream):
        cached = fleet[i % len(fleet)]
        started = clock()
        try:
            got = cached.rows([texts[index]])
        except Exception:
            phase.failures += 1
        else:
            phase.add(got.served_by, clock() - started)
        progress.advance(task)
