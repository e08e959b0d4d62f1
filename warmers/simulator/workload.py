"""From per-minute counts to requests: arrival times, durations and memory, reproducibly.

Arrivals: the trace gives only counts per minute, so within each minute the arrivals are placed
uniformly at random (what a Poisson process conditioned on the count gives). Durations: drawn per
request by inverse-CDF from the function's duration profile (linear between the published
percentiles 0, 1, 25, 50, 75, 99, 100), rounded up to 1 ms as Lambda bills. Memory: one draw per
function from its memory profile (percentiles 1..100).

Every random draw of a function comes from a generator seeded by (seed, function id), so a function's
requests are the same whether it is simulated alone, in the held-out subset or in the whole trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from warmers.traces import (
    DURATION_PERCENTILES,
    MEMORY_PERCENTILES,
    DurationProfiles,
    MemoryProfiles,
    Pairing,
    Trace,
    assign_profiles,
    stable_unit,
)


@dataclass(frozen=True)
class Workload:
    trace: Trace
    offsets: npt.NDArray[np.int64]  # [F+1]: requests of function f are [offsets[f], offsets[f+1])
    arrivals_s: npt.NDArray[np.float64]  # [N], sorted within each function
    durations_s: npt.NDArray[np.float64]  # [N]
    memory_mb: npt.NDArray[np.float64]  # [F]
    busy_s: npt.NDArray[np.float64]  # [F, M]: summed durations of requests starting in each minute
    seed: int

    @property
    def invocations(self) -> npt.NDArray[np.int64]:
        return self.trace.counts

    @property
    def n_functions(self) -> int:
        return self.trace.n_functions

    @property
    def minutes(self) -> int:
        return self.trace.minutes

    def subset(self, mask: npt.NDArray[np.bool_]) -> Workload:
        """The same requests for some functions only."""
        idx = np.flatnonzero(mask)
        parts = [np.arange(self.offsets[f], self.offsets[f + 1]) for f in idx]
        take = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        sizes = np.array([self.offsets[f + 1] - self.offsets[f] for f in idx], dtype=np.int64)
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return Workload(
            trace=self.trace.subset(mask),
            offsets=offsets,
            arrivals_s=self.arrivals_s[take],
            durations_s=self.durations_s[take],
            memory_mb=self.memory_mb[idx],
            busy_s=self.busy_s[idx],
            seed=self.seed,
        )

    def requests(self, f: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        a, b = self.offsets[f], self.offsets[f + 1]
        return self.arrivals_s[a:b], self.durations_s[a:b]


def _inverse_cdf(
    u: npt.NDArray[np.float64], knots: tuple[float, ...], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Piecewise-linear quantile function through (knots/100, values); u in [0, 1)."""
    q = np.clip(u * 100.0, knots[0], knots[-1])
    return np.asarray(np.interp(q, knots, values), dtype=np.float64)


def build_workload(
    trace: Trace,
    durations: DurationProfiles,
    memory: MemoryProfiles,
    *,
    seed: int = 2019,
    pairing: Pairing = "sample",
) -> Workload:
    n, minutes = trace.counts.shape
    dur_rows = assign_profiles(
        trace.function_ids, durations.function_ids, seed=seed, salt="duration", pairing=pairing
    )
    mem_rows = assign_profiles(
        trace.function_ids, memory.keys, seed=seed, salt="memory", pairing=pairing, app_ids=trace.app_ids
    )
    totals = trace.counts.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(totals, out=offsets[1:])
    arrivals = np.empty(int(offsets[-1]))
    durs = np.empty(int(offsets[-1]))
    mem = np.empty(n)
    minute_index = np.arange(minutes, dtype=np.float64)
    for f in range(n):
        rng = np.random.default_rng(int(stable_unit("workload", seed, trace.function_ids[f]) * 2**63))
        mem[f] = _inverse_cdf(rng.random(1), MEMORY_PERCENTILES, memory.percentiles_mb[mem_rows[f]])[0]
        k = int(totals[f])
        if k == 0:
            continue
        lo, hi = offsets[f], offsets[f + 1]
        starts = np.repeat(minute_index, trace.counts[f])
        t = (starts + rng.random(k)) * 60.0
        t.sort()
        arrivals[lo:hi] = t
        ms = _inverse_cdf(rng.random(k), DURATION_PERCENTILES, durations.percentiles_ms[dur_rows[f]])
        durs[lo:hi] = np.maximum(np.ceil(ms), 1.0) / 1000.0
    fn = np.repeat(np.arange(n), totals)
    minute_of = np.minimum((arrivals // 60.0).astype(np.int64), minutes - 1)
    flat = np.bincount(fn * minutes + minute_of, weights=durs, minlength=n * minutes)
    busy = np.asarray(flat, dtype=np.float64).reshape(n, minutes)
    return Workload(trace, offsets, arrivals, durs, mem, busy, seed)
