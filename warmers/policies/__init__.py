"""Warm-keeping policies: one library for the simulator and the live controller.

`make_policy(name)` builds one; `POLICY_NAMES` lists them in the order tables show them.
"""

from __future__ import annotations

from collections.abc import Callable

from warmers.policies.autoscaling import ScheduledPolicy, TargetTrackingPolicy
from warmers.policies.base import Decision, Mode, Observation, Policy, PolicyContext
from warmers.policies.hybrid import HybridHistogramPolicy
from warmers.policies.oracle import OraclePolicy
from warmers.policies.preheat import PreheatPolicy
from warmers.policies.simple import KeepAlivePolicy, NonePolicy, PingPolicy

_FACTORIES: dict[str, Callable[[], Policy]] = {
    "none": NonePolicy,
    "ping": PingPolicy,
    "keepalive-10": lambda: KeepAlivePolicy(10),
    "keepalive-20": lambda: KeepAlivePolicy(20),
    "hybrid-histogram": HybridHistogramPolicy,
    "target-tracking": TargetTrackingPolicy,
    "scheduled": ScheduledPolicy,
    "preheat": PreheatPolicy,
    "oracle": OraclePolicy,
}
POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)
ALIASES = {"keepalive": ("keepalive-10", "keepalive-20"), "all": POLICY_NAMES}


def make_policy(name: str) -> Policy:
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown policy {name!r}: choose from {', '.join(POLICY_NAMES)}")
    policy = factory()
    policy.name = name
    return policy


def parse_policies(spec: str) -> list[str]:
    """'all', 'keepalive', or a comma-separated list of names, in the order given."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        for name in ALIASES.get(part, (part,)):
            if name not in _FACTORIES:
                raise ValueError(
                    f"unknown policy {name!r}: choose from {', '.join(POLICY_NAMES)}, keepalive, all"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("no policy given: pass --policy NAME[,NAME...] or --policy all")
    return names


__all__ = [
    "POLICY_NAMES",
    "Decision",
    "Mode",
    "Observation",
    "Policy",
    "PolicyContext",
    "make_policy",
    "parse_policies",
]
