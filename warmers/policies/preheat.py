"""preheat's own policy: keep the j-th instance warm exactly when it is worth its price.

Every minute, for every function, it estimates the probability that the function will need at least
j instances soon and keeps j instances warm while that probability, times what a cold start avoided
is worth, exceeds what keeping the instance costs:

  * hazard h(s): the probability that the next active minute comes s minutes after the last one,
    given it has not come yet. Estimated from the function's own idle-time histogram, shrunk toward a
    prior (`PRIOR_HAZARD`, learned from the training functions of the Azure 2019 trace only) with
    weight `alpha`, so a function seen once or twice already has sensible windows and periodic
    functions (timers every 5, 15, 60 minutes...) are pre-warmed just before they fire;
  * concurrency: the distribution of the peak instances an active minute needs, estimated from
    invocations and busy seconds per minute (Little's law plus a Poisson margin), decayed so that it
    follows the function's recent bursts;
  * price: provider mode pays memory time (an instance-minute costs its memory), and values a cold
    start avoided as a share of the function's invocations (cold-start % is per function);
    aws mode pays per warm-up ping (a request and its hold, every `refresh` minutes) and values
    every cold start alike.

The knobs (`provider_price`, `provider_beta`, `instance_keepalive_s`, `alpha`, `aws_value_usd`) were
tuned on the training functions only (`warmers.traces.held_out_mask` keeps 30% aside, by a fixed
hash of the function id); `preheat simulate` reports the held-out functions separately.

Provider mode pre-loads the chosen number of instances for the minute and keeps a finished instance
`instance_keepalive_s` more, for the requests of the same burst. Aws mode keeps them warm with
pings fanned out to that many instances, only when Lambda's own keep-alive would lose them.
"""

from __future__ import annotations

import numpy as np

from warmers.policies.base import Decision, Observation, Policy, PolicyContext
from warmers.policies.preheat_prior import PRIOR_HAZARD
from warmers.pricing import US_EAST_1_X86


class PoolKeeper:
    """Keeps a pool of `want` instances alive on a platform with a fixed idle keep-alive, with pings.

    A ping batch refreshes the pool; so does a minute in which the function itself used at least
    that many instances. A batch is sent when the pool is about to expire or must grow.
    """

    def __init__(self, n: int, platform_keepalive_s: float, safety_min: float = 2.0) -> None:
        self.touch = np.full(n, -np.inf)
        self.size = np.zeros(n, dtype=np.int64)
        self.refresh_min = max(1.0, platform_keepalive_s / 60.0 - safety_min)

    def observe(self, minute: int, active: np.ndarray, peak: np.ndarray) -> None:
        used = active & (peak >= self.size)
        self.touch[used] = np.maximum(self.touch[used], minute)

    def pings(self, minute: int, want: np.ndarray) -> np.ndarray:
        due = (want > 0) & ((minute - self.touch >= self.refresh_min) | (want > self.size))
        self.touch[due] = minute
        self.size[due] = want[due]
        return np.where(due, want, 0).astype(np.int64)


class PreheatPolicy(Policy):
    name = "preheat"

    def __init__(
        self,
        *,
        range_min: int = 720,
        alpha: float = 1.0,
        provider_price: float = 0.05,
        provider_beta: float = 0.5,
        instance_keepalive_s: float = 180.0,
        aws_value_usd: float = 3e-4,
        peak_z: float = 1.5,
        peak_levels: int = 64,
        peak_decay: float = 0.98,
        prior: tuple[float, ...] = PRIOR_HAZARD,
    ) -> None:
        self.range_min = range_min
        self.alpha = alpha
        self.provider_price = provider_price
        self.provider_beta = provider_beta
        self.instance_keepalive_s = instance_keepalive_s
        self.aws_value_usd = aws_value_usd
        self.peak_z = peak_z
        self.levels = peak_levels
        self.peak_decay = peak_decay
        h0 = np.asarray(prior, dtype=np.float64)
        if h0.size < range_min + 1:
            h0 = np.concatenate([h0, np.full(range_min + 1 - h0.size, h0[-1])])
        self.h0 = np.clip(h0[: range_min + 1], 1e-6, 1.0)

    def reset(self, ctx: PolicyContext) -> None:
        super().reset(ctx)
        n, r = self.n, self.range_min
        self.hist = np.zeros((n, r + 1))
        self.surv = np.zeros((n, r + 1))
        self.last = np.full(n, -np.inf)
        self.count = np.zeros(n)
        self.ptail = np.zeros((n, self.levels))
        self.keeper = PoolKeeper(n, ctx.platform_keepalive_s)
        gb = np.maximum(128.0, np.ceil(ctx.memory_mb)) / 1024.0
        prices = US_EAST_1_X86
        # One more instance kept warm on Lambda costs a ping (request + hold) per refresh.
        self.ping_cost = prices.request_usd + ctx.ping_hold_s * gb * prices.duration_gb_s_usd

    # -- learning -----------------------------------------------------------------------------
    def _learn(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        latest = obs.latest()
        active = np.zeros(self.n, dtype=bool)
        peak = np.zeros(self.n, dtype=np.int64)
        if latest is None:
            return active, peak
        v = obs.visible - 1
        n_now, busy = latest
        active = n_now > 0
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return active, peak
        had = idx[np.isfinite(self.last[idx])]
        if had.size:
            its = np.minimum(v - self.last[had], self.range_min).astype(np.int64)
            self.hist[had, its] += 1.0
            # surv[f, s] counts idle times >= s: a new idle time b adds one to surv[f, 0..b].
            rows, cols = _prefixes(had, its + 1)
            self.surv[rows, cols] += 1.0
        self.last[idx] = v
        self.count[idx] += n_now[idx]
        conc = busy[idx] / 60.0
        est = np.ceil(conc + self.peak_z * np.sqrt(conc))
        est = np.clip(np.minimum(est, n_now[idx] + np.ceil(conc)), 1, self.levels).astype(np.int64)
        # ptail[f, j-1]: decayed count of active minutes that needed >= j instances.
        self.ptail[idx] *= self.peak_decay
        rows, cols = _prefixes(idx, est)
        self.ptail[rows, cols] += 1.0
        peak[idx] = est
        return active, peak

    def _hazard(self, s: np.ndarray) -> np.ndarray:
        """h(s) for each function (rows) at idle ages s ([F] or [F, H])."""
        r = self.range_min
        si = np.minimum(s, r).astype(np.int64)
        rows = np.arange(self.n).reshape((-1,) + (1,) * (si.ndim - 1))
        # Idle times beyond the range share one bin: spread its count over the range's length.
        own = np.where(si == r, self.hist[rows, si] / r, self.hist[rows, si])
        num = own + self.alpha * self.h0[si]
        den = self.surv[rows, si] + self.alpha
        return np.asarray(np.clip(num / den, 0.0, 1.0))

    def _tail(self, rows: np.ndarray) -> np.ndarray:
        """P(an active minute needs >= j instances) for the given functions, [rows, levels]."""
        t = self.ptail[rows]
        total = t[:, :1]
        out = np.divide(t, total, out=np.zeros_like(t), where=total > 0)
        out[:, 0] = 1.0  # an active minute needs one instance
        return np.asarray(out, dtype=np.float64)

    # -- deciding -----------------------------------------------------------------------------
    def decide(self, obs: Observation) -> Decision:
        active, peak = self._learn(obs)
        d = Decision.idle(self.n)
        seen = np.isfinite(self.last)
        s = np.where(seen, obs.minute - np.where(seen, self.last, 0.0), 0.0).astype(np.int64)
        s = np.maximum(s, 1)
        if self.ctx.mode == "provider":
            h = self._hazard(s)
            n_est = np.maximum(self.count * 1440.0 / max(obs.visible, 60), 1.0)
            worth = h * n_est ** (-self.provider_beta)
            price = self.provider_price * 1e-4 * self.ctx.memory_mb
            want = self._count_worth(worth, price, seen)
            d.keepalive_s[:] = self.instance_keepalive_s
            return Decision(want, d.pings, d.keepalive_s, d.prewarm_s)
        horizon = int(self.keeper.refresh_min)
        ages = s[:, None] + np.arange(horizon)[None, :]
        p_soon = 1.0 - np.prod(1.0 - self._hazard(ages), axis=1)
        want = self._count_worth(p_soon * self.aws_value_usd, self.ping_cost, seen)
        want[~seen] = 1  # a function never seen yet: keep one warm, as a warmer would
        self.keeper.observe(obs.visible - 1, active, peak)
        return Decision(d.provisioned, self.keeper.pings(obs.minute, want), d.keepalive_s, d.prewarm_s)

    def _count_worth(self, worth: np.ndarray, price: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """How many instances j have worth * P(need >= j) >= price (0 for functions never seen)."""
        want = np.zeros(self.n, dtype=np.int64)
        rows = np.flatnonzero(seen & (worth >= price))
        if rows.size:
            tail = self._tail(rows)
            want[rows] = (worth[rows, None] * tail >= price[rows, None]).sum(axis=1)
        return want


def _prefixes(rows: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat (row, col) indices of the first lengths[i] columns of each row, without a Python loop."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    cols = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    return np.repeat(rows, lengths), cols
