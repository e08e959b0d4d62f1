"""The policies a Lambda user can pick today without preheat: none, a fixed-rate warmer, and fixed keep-alive."""

from __future__ import annotations

from warmers.policies.base import Decision, LastSeen, Observation, PingKeeper, Policy, PolicyContext


class NonePolicy(Policy):
    """The platform's own keep-alive and nothing else."""

    name = "none"

    def decide(self, obs: Observation) -> Decision:
        return Decision.idle(self.n)


class PingPolicy(Policy):
    """A fixed-rate warmer, as serverless-plugin-warmup does: `concurrency` pings every `interval_min`."""

    def __init__(self, interval_min: int = 5, concurrency: int = 1) -> None:
        if interval_min < 1 or concurrency < 1:
            raise ValueError("ping: interval_min and concurrency must be at least 1")
        self.interval_min = interval_min
        self.concurrency = concurrency
        self.name = "ping"

    def describe(self) -> str:
        return f"ping every {self.interval_min} min, concurrency {self.concurrency}"

    def decide(self, obs: Observation) -> Decision:
        d = Decision.idle(self.n)
        if obs.minute % self.interval_min == 0:
            d.pings[:] = self.concurrency
        return d


class KeepAlivePolicy(Policy):
    """A fixed keep-alive window after each invocation (the 10 and 20 minute baselines of Shahrad et al.).

    Provider mode sets the window directly. On Lambda, whose own keep-alive is fixed, the window is
    stretched with pings while the function is still inside it.
    """

    def __init__(self, minutes: float) -> None:
        if minutes <= 0:
            raise ValueError("keepalive: minutes must be positive")
        self.minutes = minutes
        self.name = f"keepalive-{minutes:g}"

    def reset(self, ctx: PolicyContext) -> None:
        super().reset(ctx)
        self.last = LastSeen(self.n)
        self.keeper = PingKeeper(self.n, ctx.platform_keepalive_s)

    def decide(self, obs: Observation) -> Decision:
        d = Decision.idle(self.n)
        last = self.last.update(obs)
        if self.ctx.mode == "provider":
            d.keepalive_s[:] = self.minutes * 60.0
            return d
        self.keeper.observe(last)
        want = (obs.minute - last) < self.minutes
        return Decision(d.provisioned, self.keeper.pings(obs.minute, want), d.keepalive_s, d.prewarm_s)
