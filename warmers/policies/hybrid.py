"""The hybrid histogram policy of Shahrad et al., "Serverless in the Wild", USENIX ATC'20, section 4.2.

Per function, a range-limited histogram of idle times (IT, minutes between invocations; 1-minute bins
up to `range_min`, 4 hours) gives two windows applied after every execution:
  pre-warm   = head percentile (5th) minus a 10% margin: unload, then load again after this long;
  keep-alive = tail percentile (99th) plus a 10% margin, minus the pre-warm: stay loaded this long.
When the histogram is not yet representative (fewer than `min_its` idle times, or the coefficient
of variation of its bin counts below `cv_threshold`) it falls back to the standard keep-alive: no
pre-warm, keep-alive = the histogram's range. When most idle times fall out of the range, it
predicts the next idle time from the recent out-of-bounds ones (the paper uses ARIMA; here the mean
of the last `oob_history` of them, a simplification) and pre-warms at 85% of it for a window of 30%.

Idle times are measured at the trace's resolution, between minutes with invocations.
On Lambda, where keep-alive is the platform's, the windows are kept with warm-up pings (PingKeeper).
"""

from __future__ import annotations

import numpy as np

from warmers.policies.base import Decision, LastSeen, Observation, PingKeeper, Policy, PolicyContext


class HybridHistogramPolicy(Policy):
    name = "hybrid-histogram"

    def __init__(
        self,
        *,
        range_min: int = 240,
        head_pct: float = 5.0,
        tail_pct: float = 99.0,
        margin: float = 0.10,
        cv_threshold: float = 2.0,
        min_its: int = 1,
        oob_fraction: float = 0.5,
        oob_history: int = 3,
    ) -> None:
        self.range_min = range_min
        self.head_pct = head_pct
        self.tail_pct = tail_pct
        self.margin = margin
        self.cv_threshold = cv_threshold
        self.min_its = min_its
        self.oob_fraction = oob_fraction
        self.oob_history = oob_history

    def reset(self, ctx: PolicyContext) -> None:
        super().reset(ctx)
        n = self.n
        self.hist = np.zeros((n, self.range_min), dtype=np.int64)
        self.n_its = np.zeros(n, dtype=np.int64)
        self.n_oob = np.zeros(n, dtype=np.int64)
        self.oob_recent = np.full((n, self.oob_history), np.nan)
        self.last = LastSeen(n)
        self.prev_active = np.full(n, -1, dtype=np.int64)
        # Windows in minutes; until a function has any idle time: the standard keep-alive.
        self.prewarm_min = np.zeros(n)
        self.keepalive_min = np.full(n, float(self.range_min))
        self.keeper = PingKeeper(n, ctx.platform_keepalive_s)

    def _learn(self, obs: Observation) -> None:
        latest = obs.latest()
        if latest is None:
            return
        minute = obs.visible - 1
        active = np.flatnonzero(latest[0] > 0)
        if active.size == 0:
            return
        had = active[self.prev_active[active] >= 0]
        its = minute - self.prev_active[had]
        self.prev_active[active] = minute
        if had.size == 0:
            return
        inb = its < self.range_min
        np.add.at(self.hist, (had[inb], its[inb]), 1)
        self.n_its[had] += 1
        oob = had[~inb]
        self.n_oob[oob] += 1
        if oob.size:
            self.oob_recent[oob] = np.roll(self.oob_recent[oob], 1, axis=1)
            self.oob_recent[oob, 0] = its[~inb]
        self._windows(had)

    def _windows(self, idx: np.ndarray) -> None:
        hist = self.hist[idx].astype(np.float64)
        total = hist.sum(axis=1)
        mean = hist.mean(axis=1)
        cv = np.divide(hist.std(axis=1), mean, out=np.zeros_like(mean), where=mean > 0)
        cum = np.cumsum(hist, axis=1)
        head = np.argmax(cum >= (self.head_pct / 100.0) * total[:, None], axis=1).astype(np.float64)
        tail = np.argmax(cum >= (self.tail_pct / 100.0) * total[:, None], axis=1).astype(np.float64)
        # A bin b holds idle times in [b, b+1): the window must reach the end of the tail bin.
        prewarm = np.floor(head * (1.0 - self.margin))
        keepalive = np.ceil((tail + 1.0) * (1.0 + self.margin)) - prewarm
        representative = (self.n_its[idx] >= self.min_its) & (cv >= self.cv_threshold) & (total > 0)
        prewarm = np.where(representative, prewarm, 0.0)
        keepalive = np.where(representative, keepalive, float(self.range_min))
        oob_heavy = self.n_oob[idx] > self.oob_fraction * np.maximum(self.n_its[idx], 1)
        if oob_heavy.any():
            recent = self.oob_recent[idx[oob_heavy]]
            predicted = np.nanmean(recent, axis=1)
            prewarm[oob_heavy] = np.floor(0.85 * predicted)
            keepalive[oob_heavy] = np.ceil(0.30 * predicted)
        self.prewarm_min[idx] = prewarm
        self.keepalive_min[idx] = np.maximum(keepalive, 1.0)

    def decide(self, obs: Observation) -> Decision:
        self._learn(obs)
        d = Decision.idle(self.n)
        if self.ctx.mode == "provider":
            return Decision(d.provisioned, d.pings, self.keepalive_min * 60.0, self.prewarm_min * 60.0)
        last = self.last.update(obs)
        since = obs.minute - last
        want = (since >= self.prewarm_min) & (since < self.prewarm_min + self.keepalive_min)
        # Never pinged before its first invocation: there is nothing to keep warm yet.
        want &= np.isfinite(last)
        self.keeper.observe(last)
        return Decision(d.provisioned, self.keeper.pings(obs.minute, want), d.keepalive_s, d.prewarm_s)
