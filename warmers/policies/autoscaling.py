"""Provisioned concurrency the way Application Auto Scaling manages it for a Lambda alias.

target-tracking: the predefined metric LambdaProvisionedConcurrencyUtilization (Average of 1-minute
datapoints) against a target (0.7 by default). As with the two alarms target tracking creates, it
scales out when `scale_out_points` consecutive datapoints (3) exceed the target and scales in when
`scale_in_points` consecutive datapoints (15) are below 90% of it, to ceil(capacity * metric / target),
within [min_capacity, max_concurrency]. Cooldowns default to 0, Application Auto Scaling's default for
Lambda provisioned concurrency. Utilization is what provisioned instances serve: min(average
concurrency, capacity) / capacity, so it never exceeds 1 and a scale-out step is at most 1/target.
With capacity 0 the metric has no datapoints and the alarms never fire: min_capacity is 1.

scheduled: scheduled actions setting provisioned concurrency by hour of day (UTC), as a user would
for business hours.
"""

from __future__ import annotations

import numpy as np

from warmers.policies.base import Decision, Observation, Policy, PolicyContext


class TargetTrackingPolicy(Policy):
    name = "target-tracking"

    def __init__(
        self,
        *,
        target: float = 0.7,
        min_capacity: int = 1,
        scale_out_points: int = 3,
        scale_in_points: int = 15,
        scale_in_ratio: float = 0.9,
        scale_out_cooldown_min: int = 0,
        scale_in_cooldown_min: int = 0,
    ) -> None:
        if not 0.0 < target <= 1.0:
            raise ValueError("target-tracking: target must be in (0, 1]")
        self.target = target
        self.min_capacity = min_capacity
        self.scale_out_points = scale_out_points
        self.scale_in_points = scale_in_points
        self.scale_in_ratio = scale_in_ratio
        self.scale_out_cooldown_min = scale_out_cooldown_min
        self.scale_in_cooldown_min = scale_in_cooldown_min

    def describe(self) -> str:
        return f"target-tracking {self.target:g} utilization, min {self.min_capacity}"

    def reset(self, ctx: PolicyContext) -> None:
        super().reset(ctx)
        n = self.n
        self.capacity = np.full(n, self.min_capacity, dtype=np.int64)
        self.window = max(self.scale_out_points, self.scale_in_points)
        self.util = np.zeros((n, self.window))
        self.points = np.zeros(n, dtype=np.int64)  # datapoints since the last scaling action
        self.last_out = np.full(n, -(10**9), dtype=np.int64)
        self.last_in = np.full(n, -(10**9), dtype=np.int64)

    def decide(self, obs: Observation) -> Decision:
        latest = obs.latest()
        if latest is not None:
            cap = self.capacity.astype(np.float64)
            conc = latest[1] / 60.0
            util = np.divide(np.minimum(conc, cap), cap, out=np.zeros_like(cap), where=cap > 0)
            self.util = np.roll(self.util, 1, axis=1)
            self.util[:, 0] = util
            self.points += (cap > 0).astype(np.int64)
            self._scale(obs.minute)
        d = Decision.idle(self.n)
        return Decision(self.capacity.copy(), d.pings, d.keepalive_s, d.prewarm_s)

    def _scale(self, minute: int) -> None:
        o, i = self.scale_out_points, self.scale_in_points
        high = (self.points >= o) & (self.util[:, :o] > self.target).all(axis=1)
        high &= minute - self.last_out >= self.scale_out_cooldown_min
        low = (self.points >= i) & (self.util[:, :i] < self.scale_in_ratio * self.target).all(axis=1)
        low &= minute - self.last_in >= self.scale_in_cooldown_min
        cap = self.capacity.astype(np.float64)
        maximum = self.ctx.max_concurrency
        out_to = np.ceil(cap * self.util[:, :o].mean(axis=1) / self.target - 1e-9)
        in_to = np.ceil(cap * self.util[:, :i].mean(axis=1) / self.target - 1e-9)
        new = self.capacity.copy()
        grow = high & (out_to > cap)
        new[grow] = np.minimum(out_to[grow], maximum).astype(np.int64)
        shrink = low & ~high & (in_to < cap)
        new[shrink] = np.maximum(in_to[shrink], self.min_capacity).astype(np.int64)
        changed = new != self.capacity
        self.points[changed] = 0
        self.last_out[grow & changed] = minute
        self.last_in[shrink & changed] = minute
        self.capacity = np.clip(new, 0, maximum)


class ScheduledPolicy(Policy):
    name = "scheduled"

    def __init__(self, *, start_hour: int = 8, end_hour: int = 20, capacity: int = 1) -> None:
        if not (0 <= start_hour < 24 and 0 < end_hour <= 24 and capacity >= 0):
            raise ValueError("scheduled: hours must be within 0..24 and capacity >= 0")
        self.start_hour = start_hour
        self.end_hour = end_hour
        self.capacity = capacity

    def describe(self) -> str:
        return f"scheduled {self.capacity} from {self.start_hour:02d}:00 to {self.end_hour:02d}:00 UTC"

    def decide(self, obs: Observation) -> Decision:
        hour = obs.minute_of_day // 60
        d = Decision.idle(self.n)
        if self.start_hour <= hour < self.end_hour:
            d.provisioned[:] = self.capacity
        return d
