"""Each policy's decisions on small, hand-made invocation histories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from warmers import traces
from warmers.policies import POLICY_NAMES, make_policy, parse_policies
from warmers.policies.base import Decision
from warmers.policies.hybrid import HybridHistogramPolicy
from warmers.policies.preheat_prior import PRIOR_HAZARD
from warmers.simulator.fit import fit_prior, render
from warmers.simulator.run import Plan, SimConfig, plan_policy
from warmers.simulator.workload import Workload
from warmers.traces import Trace

SHARED = Path(__file__).resolve().parents[3] / "shared" / "traces" / "azure2019"


def plan(policy, counts, busy=None, *, mode="provider", **cfg) -> Plan:
    c = np.atleast_2d(np.asarray(counts, dtype=np.int64))
    b = c * 0.2 if busy is None else np.atleast_2d(np.asarray(busy, dtype=np.float64))
    n = c.shape[0]
    trace = Trace(
        tuple(f"f{i}" for i in range(n)), tuple(f"f{i}" for i in range(n)), c, None, "minute_N", "t"
    )
    workload = Workload(
        trace, np.zeros(n + 1, dtype=np.int64), np.zeros(0), np.zeros(0), np.full(n, 512.0), b, 0
    )
    if isinstance(policy, str):
        policy = make_policy(policy)
    return plan_policy(policy, workload, SimConfig(mode=mode, **cfg))


def every(period: int, minutes: int, n: int = 1) -> np.ndarray:
    c = np.zeros(minutes, dtype=np.int64)
    c[::period] = n
    return c


def test_none_leaves_everything_to_the_platform():
    p = plan("none", every(7, 60))
    assert p.provisioned.sum() == 0 and p.pings.sum() == 0
    assert (p.keepalive_s == 600.0).all() and (p.prewarm_s == 0.0).all()


@pytest.mark.parametrize("mode", ["provider", "aws"])
def test_ping_every_five_minutes(mode):
    p = plan("ping", np.zeros(30), mode=mode)
    assert np.flatnonzero(p.pings[0]).tolist() == [0, 5, 10, 15, 20, 25]
    assert set(p.pings[0][p.pings[0] > 0]) == {1}


def test_keepalive_sets_the_window_in_provider_mode():
    p = plan("keepalive-20", every(50, 100))
    assert (p.keepalive_s == 1200.0).all()


def test_keepalive_on_lambda_pings_until_the_window_closes():
    # Seen at minute 0 (visible from minute 2: one minute of CloudWatch lag); Lambda keeps 10 min,
    # so the 20-minute window needs refreshes 8 and 16 minutes after, then nothing.
    p = plan("keepalive-20", np.r_[1, np.zeros(59)], mode="aws")
    assert np.flatnonzero(p.pings[0]).tolist() == [8, 16]


def test_hybrid_learns_the_period_of_a_timer():
    p = plan("hybrid-histogram", every(30, 300))
    assert p.keepalive_s[0, 0] == 240 * 60 and p.prewarm_s[0, 0] == 0  # nothing learned: standard 4 h
    # After idle times of 30: pre-warm 0.9 * 30 = 27 min, keep-alive ceil(1.1 * 31) - 27 = 8 min.
    assert p.prewarm_s[0, -1] == 27 * 60 and p.keepalive_s[0, -1] == 8 * 60


def test_hybrid_falls_back_when_the_histogram_is_flat():
    its = np.arange(1, 61)
    counts = np.zeros(int(its.sum()) + 2, dtype=np.int64)
    counts[np.r_[0, np.cumsum(its)]] = 1
    p = plan("hybrid-histogram", counts)
    assert p.prewarm_s[0, -1] == 0 and p.keepalive_s[0, -1] == 240 * 60


def test_hybrid_predicts_out_of_range_idle_times():
    p = plan(HybridHistogramPolicy(), every(300, 1210))
    assert p.prewarm_s[0, -1] == np.floor(0.85 * 300) * 60 and p.keepalive_s[0, -1] == np.ceil(0.3 * 300) * 60


def test_target_tracking_scales_out_after_three_minutes_and_in_after_fifteen():
    busy = np.r_[np.full(30, 120.0), np.zeros(40)]  # an average concurrency of 2, then nothing
    p = plan("target-tracking", (busy > 0).astype(int) * 60, busy)
    cap = p.provisioned[0]
    assert cap[:3].tolist() == [1, 1, 1] and cap[3] == 2 and cap[6] == 3
    assert cap[29] == 3  # 2 busy of 3 is 67%: below the 70% target, no further scale-out
    assert cap[44] == 3 and cap[45] == 1  # 15 minutes below 63% -> ceil(3 * 0 / 0.7), min 1


def test_target_tracking_respects_the_maximum():
    p = plan("target-tracking", np.full(60, 600), np.full(60, 600.0), max_concurrency=2)
    assert p.provisioned.max() == 2


def test_scheduled_follows_the_clock():
    p = plan("scheduled", np.zeros(1440))
    hours = p.provisioned[0].reshape(24, 60).max(axis=1)
    assert hours.tolist() == [0] * 8 + [1] * 12 + [0] * 4


def test_preheat_prewarms_a_timer_just_before_it_fires():
    p = plan("preheat", every(20, 400))
    floor = p.provisioned[0]
    assert floor[0] == 0  # never seen: nothing kept
    # Early on the prior's short idle times dominate; once the period is learned, only the minute
    # it fires in is worth an instance's memory.
    late = np.flatnonzero(floor[300:]) + 300
    assert late.tolist() == [300, 320, 340, 360, 380]
    assert (p.keepalive_s[0] == 180.0).all()


def test_preheat_on_lambda_keeps_a_pool_as_large_as_the_bursts():
    counts = every(12, 240, n=90)
    busy = counts * 2.5  # ~4 requests in flight during each burst
    p = plan("preheat", counts, busy, mode="aws")
    pings = p.pings[0]
    assert pings[0] == 1  # unseen: one warm instance, as a warmer would
    late = pings[120:]
    assert late.max() >= 4 and late[late > 0].min() >= 4
    assert p.provisioned.sum() == 0


def test_a_function_that_went_quiet():
    counts = np.zeros(1440, dtype=np.int64)
    counts[:60] = 5
    # Memory is dear: the provider stops pre-loading it within about an hour.
    q = plan("preheat", counts)
    assert q.provisioned[0, 130:].sum() == 0
    # A ping is cheap against a cold start (3e-4 $): on Lambda one instance stays warm, refreshed
    # just before Lambda's 10-minute keep-alive would lose it.
    p = plan("preheat", counts, mode="aws")
    late = np.flatnonzero(p.pings[0, 200:])
    assert p.pings[0, 200:].max() == 1 and np.diff(late).min() == 8


def test_decisions_are_bounded():
    d = Decision(np.array([5, -1]), np.array([9, 0]), np.array([np.nan, 1.0]), np.array([-3.0, 2.0]))
    b = d.bounded(4)
    assert (
        b.provisioned.tolist() == [4, 0] and b.pings.tolist() == [4, 0] and b.prewarm_s.tolist() == [0.0, 2.0]
    )


def test_policy_names_and_aliases():
    assert parse_policies("all") == list(POLICY_NAMES)
    assert parse_policies("preheat,keepalive") == ["preheat", "keepalive-10", "keepalive-20"]
    with pytest.raises(ValueError, match="unknown policy 'warmest'"):
        parse_policies("warmest")
    with pytest.raises(ValueError, match="no policy"):
        parse_policies(" , ")
    assert make_policy("keepalive-20").name == "keepalive-20"


def test_the_prior_file_holds_the_values_the_module_held():
    """warmers/policies/preheat_prior.py held these as Python constants before they became data."""
    import hashlib
    import math

    assert len(PRIOR_HAZARD) == 721 and math.fsum(PRIOR_HAZARD) == pytest.approx(2.852412, abs=1e-9)
    assert (PRIOR_HAZARD[0], PRIOR_HAZARD[2], PRIOR_HAZARD[15], PRIOR_HAZARD[720]) == (0.3287, 0.08308, 0.06376, 0.0004816)
    digest = "5b67d5a92a6a64420a2ab0210dc4429c0f0d7e405ae435c0c5c7f5e100cb3fcf"
    assert hashlib.sha256(repr(PRIOR_HAZARD).encode()).hexdigest() == digest


def test_the_fit_writes_what_the_policy_reads(tmp_path):
    from warmers.policies.preheat_prior import load_prior

    path = tmp_path / "prior.json"
    path.write_text(render(list(PRIOR_HAZARD), "a test"))
    assert load_prior(path) == PRIOR_HAZARD


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/traces/azure2019 is not beside the repo")
def test_the_shipped_prior_was_fitted_on_training_functions_only():
    trace = traces.load_invocations(SHARED / "invocations_per_minute.csv")
    held = traces.held_out_mask(trace.function_ids)
    assert tuple(fit_prior(trace, ~held)) == PRIOR_HAZARD
    assert tuple(fit_prior(trace, np.ones(trace.n_functions, dtype=bool))) != PRIOR_HAZARD
