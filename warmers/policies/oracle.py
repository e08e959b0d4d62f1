"""The oracle: knows every future arrival. The limit no policy can beat.

It keeps nothing warm (no idle memory, no provisioned concurrency) and has the simulator start an
instance exactly when a request would otherwise have waited for one: zero cold starts, zero wasted
memory in provider mode; on Lambda, one just-in-time warm-up ping per would-be cold start (its INIT is
billed like any cold start's, plus the ping's request). It cannot run live.
"""

from __future__ import annotations

from warmers.policies.base import Decision, Observation, Policy


class OraclePolicy(Policy):
    name = "oracle"
    clairvoyant = True

    def decide(self, obs: Observation) -> Decision:
        d = Decision.idle(self.n)
        d.keepalive_s[:] = 0.0
        return d
