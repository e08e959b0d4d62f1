"""Run policies over a workload: decisions minute by minute, then the platform function by function.

Decisions depend only on what CloudWatch would show (invocations and busy seconds per minute, with
`metric_lag_min` of delay), never on the simulated platform's state, so a policy's whole day is
planned first, vectorized across functions, and each function's platform is then simulated alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from warmers.policies import make_policy
from warmers.policies.base import Decision, Mode, Observation, Policy, PolicyContext
from warmers.pricing import US_EAST_1_X86, LambdaPrices, lambda_memory_mb
from warmers.simulator.engine import FunctionRun, simulate_function
from warmers.simulator.workload import Workload

# Cold-start penalty: INIT of preheat's handler shape (Powertools + ONNX Runtime + int8 MiniLM) through
# awslambdaric on this machine, spawn to first /next: 364 ms (../shared/notes/cold-start-baseline.md).
DEFAULT_COLD_START_MS = 364.0
# Lambda recycles an idle instance about 10 minutes after its last request (M. Shilkov, "AWS Lambda
# cold starts after 10 minutes", mikhail.io, 2019); also the paper's normalizing baseline.
DEFAULT_PLATFORM_KEEPALIVE_MIN = 10.0
PROVIDER_BASELINE = "keepalive-10"
AWS_BASELINE = "none"

Progress = Callable[[str, int], None]  # (policy, functions done since the last call)


@dataclass(frozen=True)
class SimConfig:
    mode: Mode
    seed: int = 2019
    cold_start_ms: float = DEFAULT_COLD_START_MS
    platform_keepalive_min: float = DEFAULT_PLATFORM_KEEPALIVE_MIN
    ping_hold_ms: float = 100.0
    # CloudWatch delay before a minute's metrics are readable, and provisioned concurrency's
    # allocation time. The provider sees its own invocations at once and pre-loads in place.
    metric_lag_min: int | None = None
    pc_lag_min: int | None = None
    max_concurrency: int = 1000
    prices: LambdaPrices = US_EAST_1_X86
    warmer_memory_mb: int = 256
    warmer_overhead_s: float = 0.03

    @property
    def metric_lag(self) -> int:
        if self.metric_lag_min is not None:
            return self.metric_lag_min
        return 1 if self.mode == "aws" else 0

    @property
    def pc_lag(self) -> int:
        if self.pc_lag_min is not None:
            return self.pc_lag_min
        return 2 if self.mode == "aws" else 0

    @property
    def baseline(self) -> str:
        return PROVIDER_BASELINE if self.mode == "provider" else AWS_BASELINE


@dataclass(frozen=True)
class Plan:
    """A policy's decisions for every function and minute."""

    provisioned: npt.NDArray[np.int64]  # [F, M] as decided (billed)
    effective: npt.NDArray[np.int64]  # [F, M] as serving (after allocation lag)
    pings: npt.NDArray[np.int64]
    keepalive_s: npt.NDArray[np.float64]
    prewarm_s: npt.NDArray[np.float64]


@dataclass(frozen=True)
class PolicyRun:
    """Per-function outcomes of one policy: arrays over functions."""

    policy: str
    description: str
    invocations: npt.NDArray[np.int64]
    cold: npt.NDArray[np.int64]
    pings: npt.NDArray[np.int64]
    wasted_mb_s: npt.NDArray[np.float64]
    provisioned_gb_s: npt.NDArray[np.float64]
    cost_usd: npt.NDArray[np.float64]
    cost_parts: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)


def plan_policy(policy: Policy, workload: Workload, cfg: SimConfig) -> Plan:
    n, minutes = workload.n_functions, workload.minutes
    ctx = PolicyContext(
        mode=cfg.mode,
        memory_mb=workload.memory_mb,
        platform_keepalive_s=cfg.platform_keepalive_min * 60.0,
        cold_start_s=cfg.cold_start_ms / 1000.0,
        ping_hold_s=cfg.ping_hold_ms / 1000.0,
        max_concurrency=cfg.max_concurrency,
    )
    policy.reset(ctx)
    prov = np.zeros((n, minutes), dtype=np.int64)
    pings = np.zeros((n, minutes), dtype=np.int64)
    ka = np.zeros((n, minutes))
    pw = np.zeros((n, minutes))
    counts, busy = workload.invocations, workload.busy_s
    platform_ka = cfg.platform_keepalive_min * 60.0
    for m in range(minutes):
        obs = Observation(minute=m, visible=max(0, m - cfg.metric_lag), invocations=counts, busy_s=busy)
        d: Decision = policy.decide(obs).bounded(cfg.max_concurrency)
        prov[:, m] = d.provisioned
        pings[:, m] = d.pings
        if cfg.mode == "provider":
            ka[:, m] = np.where(np.isnan(d.keepalive_s), platform_ka, d.keepalive_s)
            pw[:, m] = d.prewarm_s
        else:
            ka[:, m] = platform_ka  # Lambda's keep-alive is not ours to set
    lag = cfg.pc_lag
    effective = prov.copy()
    if lag > 0:
        shifted = np.zeros_like(prov)
        shifted[:, lag:] = prov[:, :-lag]
        effective = np.minimum(prov, shifted)
    return Plan(prov, effective, pings, ka, pw)


def run_policy(
    name: str,
    workload: Workload,
    cfg: SimConfig,
    *,
    progress: Progress | None = None,
    policy: Policy | None = None,
) -> PolicyRun:
    policy = policy or make_policy(name)
    plan = plan_policy(policy, workload, cfg)
    runs: list[FunctionRun] = []
    step = max(1, workload.n_functions // 50)
    for f in range(workload.n_functions):
        arrivals, durations = workload.requests(f)
        runs.append(
            simulate_function(
                arrivals,
                durations,
                plan.effective[f],
                plan.pings[f],
                plan.keepalive_s[f],
                plan.prewarm_s[f],
                init_s=cfg.cold_start_ms / 1000.0,
                hold_s=cfg.ping_hold_ms / 1000.0,
                clairvoyant=policy.clairvoyant,
            )
        )
        if progress is not None and (f + 1) % step == 0:
            progress(name, step)
    if progress is not None:
        progress(name, workload.n_functions % step)
    return tally(name, policy.describe(), runs, plan, workload, cfg)


def tally(
    name: str, description: str, runs: Sequence[FunctionRun], plan: Plan, workload: Workload, cfg: SimConfig
) -> PolicyRun:
    def col(attr: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(r, attr) for r in runs], dtype=np.float64)

    prices = cfg.prices
    days = workload.minutes / 1440.0
    gb = np.array([lambda_memory_mb(m) for m in workload.memory_mb]) / 1024.0
    wgb = cfg.warmer_memory_mb / 1024.0
    init_s = cfg.cold_start_ms / 1000.0
    hold_s = cfg.ping_hold_ms / 1000.0
    inv = workload.invocations.sum(axis=1)
    pings, jit = col("pings"), col("jit_starts")
    batches = col("ping_batches") + jit  # the oracle's just-in-time starts are warmer calls too
    inits = col("cold") + col("ping_cold") + jit
    pc_seconds = plan.provisioned.sum(axis=1) * 60.0
    parts = {
        "requests": (inv + pings + jit) * prices.request_usd,
        "duration": (col("od_busy_s") + col("ping_od_s") + jit * hold_s) * gb * prices.duration_gb_s_usd,
        "init": (inits * init_s * gb * prices.duration_gb_s_usd) if prices.bill_init else np.zeros(len(runs)),
        "provisioned": pc_seconds * gb * prices.provisioned_gb_s_usd,
        "provisioned_duration": (col("pc_busy_s") + col("ping_pc_s"))
        * gb
        * prices.provisioned_duration_gb_s_usd,
        "warmer": batches * prices.request_usd
        + (batches * (hold_s + cfg.warmer_overhead_s) + col("ping_batches_cold") * init_s)
        * wgb
        * prices.duration_gb_s_usd,
    }
    parts = {k: v / days for k, v in parts.items()}
    pc_idle = np.maximum(pc_seconds - col("pc_busy_s") - col("ping_pc_s"), 0.0)
    return PolicyRun(
        policy=name,
        description=description,
        invocations=inv,
        cold=col("cold").astype(np.int64),
        pings=pings.astype(np.int64),
        wasted_mb_s=(col("idle_s") + pc_idle) * workload.memory_mb,
        provisioned_gb_s=pc_seconds * gb,
        cost_usd=np.sum(list(parts.values()), axis=0),
        cost_parts=parts,
    )


@dataclass(frozen=True)
class Summary:
    """One policy over one set of functions: what the table, JSON and plots show."""

    policy: str
    scope: str
    mode: Mode
    functions: int
    invocations: int
    cold_starts: int
    cold_start_pct: float
    p75_cold_start_pct: float
    wasted_memory_gb_s: float
    wasted_memory_norm: float
    pings: int
    provisioned_gb_s: float
    cost_usd_per_day: float
    dollars_per_day: float
    cost_parts: dict[str, float]
    description: str


def summarize(
    runs: dict[str, PolicyRun], mask: npt.NDArray[np.bool_], *, scope: str, cfg: SimConfig
) -> list[Summary]:
    base = runs[cfg.baseline]
    base_waste = float(base.wasted_mb_s[mask].sum()) / 1024.0
    base_cost = float(base.cost_usd[mask].sum())
    out = []
    for name, r in runs.items():
        inv = r.invocations[mask]
        cold = r.cold[mask]
        seen = inv > 0
        pct = 100.0 * cold[seen] / inv[seen]
        waste = float(r.wasted_mb_s[mask].sum()) / 1024.0
        cost = float(r.cost_usd[mask].sum())
        out.append(
            Summary(
                policy=name,
                scope=scope,
                mode=cfg.mode,
                functions=int(mask.sum()),
                invocations=int(inv.sum()),
                cold_starts=int(cold.sum()),
                cold_start_pct=100.0 * float(cold.sum()) / max(1, int(inv.sum())),
                p75_cold_start_pct=float(np.percentile(pct, 75)) if pct.size else 0.0,
                wasted_memory_gb_s=waste,
                wasted_memory_norm=waste / base_waste if base_waste > 0 else float("nan"),
                pings=int(r.pings[mask].sum()),
                provisioned_gb_s=float(r.provisioned_gb_s[mask].sum()),
                cost_usd_per_day=cost,
                dollars_per_day=cost - base_cost,
                cost_parts={k: float(v[mask].sum()) for k, v in r.cost_parts.items()},
                description=r.description,
            )
        )
    return out


def record_function(name: str, workload: Workload, f: int, cfg: SimConfig) -> FunctionRun:
    """One function's day under a policy, minute by minute (warm instances, cold starts), for plots."""
    mask = np.zeros(workload.n_functions, dtype=bool)
    mask[f] = True
    one = workload.subset(mask)
    policy = make_policy(name)
    plan = plan_policy(policy, one, cfg)
    arrivals, durations = one.requests(0)
    return simulate_function(
        arrivals,
        durations,
        plan.effective[0],
        plan.pings[0],
        plan.keepalive_s[0],
        plan.prewarm_s[0],
        init_s=cfg.cold_start_ms / 1000.0,
        hold_s=cfg.ping_hold_ms / 1000.0,
        clairvoyant=policy.clairvoyant,
        record=True,
    )


def simulate(
    workload: Workload,
    policies: Sequence[str],
    cfg: SimConfig,
    *,
    progress: Progress | None = None,
) -> dict[str, PolicyRun]:
    names = list(dict.fromkeys([*policies, cfg.baseline]))
    return {name: run_policy(name, workload, cfg, progress=progress) for name in names}
