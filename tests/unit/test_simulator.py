"""The platform model, the accounting, the command and the issue's done-when on the shared trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scripts.cli import main
from warmers import traces
from warmers.policies import make_policy
from warmers.pricing import US_EAST_1_X86, lambda_memory_mb
from warmers.simulator.engine import simulate_function
from warmers.simulator.report import checks
from warmers.simulator.run import SimConfig, plan_policy, run_policy, simulate, summarize
from warmers.simulator.workload import Workload, build_workload
from warmers.traces import Trace

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "traces" / "azure2019"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/traces/azure2019 is not beside the repo"
)
INIT = 0.364


def sim(arrivals, durations, *, minutes=30, provisioned=None, pings=None, keepalive=600.0, prewarm=0.0, **kw):
    prov = (
        np.zeros(minutes, dtype=np.int64) if provisioned is None else np.asarray(provisioned, dtype=np.int64)
    )
    ping = np.zeros(minutes, dtype=np.int64)
    for m, k in (pings or {}).items():
        ping[m] = k
    return simulate_function(
        np.asarray(arrivals, dtype=float),
        np.asarray(durations, dtype=float),
        prov,
        ping,
        np.full(minutes, keepalive),
        np.full(minutes, prewarm),
        init_s=INIT,
        hold_s=0.1,
        **kw,
    )


def test_keep_alive_decides_warm_or_cold():
    run = sim([10.0, 310.0, 1300.0], [1.0, 1.0, 1.0])  # 5 min later: warm; 16 min later: cold
    assert run.cold == 2
    # Idle from each finish to the next use or to expiry (600 s).
    assert run.idle_s == pytest.approx((310 - (10 + INIT + 1)) + 600 + (1800 - (1300 + INIT + 1)))


def test_one_request_per_instance():
    run = sim([0.0, 0.5, 1.0, 100.0, 100.5, 101.0, 101.5], [2.0] * 7)
    assert run.cold == 4  # three overlapping at first; later four at once: three warm, one cold
    assert sim([0.0, 3.0, 6.0], [2.0] * 3).cold == 1  # sequential: one instance


def test_provisioned_instances_serve_first():
    run = sim([30.0, 30.1, 90.0], [1.0] * 3, provisioned=[1] * 30)
    assert run.warm_provisioned == 2 and run.cold == 1  # the overlapping one spills to on-demand
    assert run.pc_busy_s == 2.0 and run.od_busy_s == 1.0


def test_a_ping_absorbs_the_cold_start_and_can_collide():
    warmed = sim([120.0], [1.0], pings={0: 1})
    assert (warmed.cold, warmed.ping_cold, warmed.pings) == (0, 1, 1)
    collided = sim([60.05], [1.0], pings={0: 1, 1: 1})  # the only instance is held by the minute-1 ping
    assert collided.cold == 1
    spread = sim([130.0, 130.2], [5.0, 5.0], pings={1: 2})
    assert (spread.cold, spread.ping_cold) == (0, 2)


def test_prewarm_unloads_then_loads_again():
    # Finish at ~1.364 s; pre-warm 120 s; warm for 60 s after that.
    run = sim([0.0, 150.0], [1.0, 1.0], prewarm=120.0, keepalive=60.0)
    assert run.cold == 1
    early = sim([0.0, 60.0], [1.0, 1.0], prewarm=120.0, keepalive=60.0)
    assert early.cold == 2  # arrived during the pre-warm gap, and took over the pending load
    assert early.idle_s == pytest.approx(60.0)  # only the second instance's window remains


def test_the_oracle_never_waits():
    run = sim([0.0, 0.1, 700.0], [1.0] * 3, keepalive=0.0, clairvoyant=True)
    assert run.cold == 0 and run.jit_starts == 3 and run.idle_s == 0.0


def test_recording_gives_the_plot_its_minutes():
    run = sim([5.0, 65.0], [1.0, 1.0], minutes=3, pings={2: 1}, record=True)
    assert run.cold_minutes == [0]
    assert run.warm_per_minute == [0, 1, 1]


def tiny_workload(counts: list[list[int]], busy: float = 0.5, memory: float = 1024.0) -> Workload:
    c = np.array(counts, dtype=np.int64)
    n, m = c.shape
    arrivals, durations, offsets = [], [], [0]
    for f in range(n):
        for minute in range(m):
            for i in range(c[f, minute]):
                arrivals.append(minute * 60.0 + 10.0 + i)
                durations.append(busy)
        offsets.append(len(arrivals))
    trace = Trace(
        tuple(f"f{i}" for i in range(n)), tuple(f"a{i}" for i in range(n)), c, None, "minute_N", "t"
    )
    return Workload(
        trace,
        np.array(offsets),
        np.array(arrivals),
        np.array(durations),
        np.full(n, memory),
        c * busy,
        0,
    )


def test_dollars_are_added_cost_at_published_prices():
    w = tiny_workload([[1] + [0] * 1439])
    cfg = SimConfig(mode="aws")
    runs = simulate(w, ["scheduled"], cfg)
    s = {x.policy: x for x in summarize(runs, np.ones(1, dtype=bool), scope="all", cfg=cfg)}
    assert s["none"].dollars_per_day == 0.0
    # 12 hours of one provisioned 1 GB instance; the request at 00:00 is outside the schedule.
    pc = 12 * 3600 * 1.0 * US_EAST_1_X86.provisioned_gb_s_usd
    assert s["scheduled"].dollars_per_day == pytest.approx(pc, rel=1e-9)
    assert s["scheduled"].provisioned_gb_s == pytest.approx(12 * 3600)
    init = INIT * US_EAST_1_X86.duration_gb_s_usd  # the cold start's INIT is billed (since 2025-08)
    assert s["none"].cost_parts["init"] == pytest.approx(init)


def test_pings_cost_requests_holds_and_the_warmer():
    w = tiny_workload([[0] * 1440])
    cfg = SimConfig(mode="aws")
    runs = simulate(w, ["ping"], cfg)
    ping = summarize(runs, np.ones(1, dtype=bool), scope="all", cfg=cfg)[0]
    assert ping.pings == 288
    prices = US_EAST_1_X86
    expected = (
        288 * 2 * prices.request_usd  # the ping and the warmer's own invocation
        + 287 * 0.1 * prices.duration_gb_s_usd  # warm holds on the 1 GB function
        + 1 * (0.1 + INIT) * prices.duration_gb_s_usd  # the first ping starts the instance
        + 288 * 0.13 * 0.25 * prices.duration_gb_s_usd  # the 256 MB warmer waits for hold + overhead
        + 1 * INIT * 0.25 * prices.duration_gb_s_usd  # ... and for the one init
    )
    assert ping.dollars_per_day == pytest.approx(expected, rel=1e-6)


def test_provisioned_concurrency_takes_effect_after_its_allocation_lag():
    w = tiny_workload([[0] * 10])
    plan = plan_policy(make_policy("target-tracking"), w, SimConfig(mode="aws"))
    assert plan.provisioned[0].tolist() == [1] * 10
    assert plan.effective[0].tolist() == [0, 0] + [1] * 8


def test_provider_baseline_normalizes_to_one_and_p75_is_per_function():
    w = tiny_workload(
        [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1] * 13]
    )
    cfg = SimConfig(mode="provider")
    runs = simulate(w, ["keepalive-20"], cfg)
    by = {s.policy: s for s in summarize(runs, np.ones(3, dtype=bool), scope="all", cfg=cfg)}
    assert by["keepalive-10"].wasted_memory_norm == pytest.approx(1.0)
    # keepalive-10: f0 100% (12 min apart), f1 50%, f2 1/13 -> 75th percentile between 50 and 100.
    assert by["keepalive-10"].p75_cold_start_pct == pytest.approx(75.0)
    assert by["keepalive-20"].p75_cold_start_pct == pytest.approx(50.0)
    assert by["keepalive-20"].wasted_memory_norm > 1.0


def test_lambda_memory_settings():
    assert (lambda_memory_mb(100.2), lambda_memory_mb(140.2), lambda_memory_mb(20_000)) == (128, 141, 10_240)


def test_simulate_command_on_the_original_layout(tmp_path):
    folder = SHARED / "original-layout-10-functions"
    if not folder.is_dir():
        pytest.skip("../shared is not beside the repo")
    out = tmp_path / "r.json"
    code = main(
        ["simulate", "--trace", str(folder / "invocations.csv"), "--mode", "aws", "--policy", "ping,preheat",
         "--pairing", "by-id", "--json", str(out), "--plots", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "aws" and [p["policy"] for p in data["policies"]] == ["ping", "preheat", "none"]
    total = int(traces.load_invocations(folder / "invocations.csv").counts.sum())
    for p in data["policies"]:
        assert {"p75_cold_start_pct", "cold_starts", "invocations", "dollars_per_day"} <= set(p)
        assert p["invocations"] == total and 0 <= p["cold_starts"] <= total
    assert (tmp_path / "simulate-aws-tradeoff.png").stat().st_size > 10_000
    assert (tmp_path / "simulate-aws-function.png").stat().st_size > 10_000


def test_simulate_command_rejects_unknown_policies(capsys):
    assert main(["simulate", "--policy", "clairvoyance"]) == 2
    assert "unknown policy" in capsys.readouterr().out


@needs_shared
@pytest.mark.parametrize(
    ("mode", "policies"),
    [
        ("provider", ["hybrid-histogram", "preheat", "oracle"]),
        ("aws", ["ping", "target-tracking", "preheat", "oracle"]),
    ],
)
def test_done_when_on_the_shared_trace_whole_and_held_out(mode, policies):
    """The issue's acceptance: preheat beats the baselines it names, on all and on held-out functions."""
    path = SHARED / "invocations_per_minute.csv"
    trace = traces.load_invocations(path)
    d, m = traces.profile_paths(path)
    w = build_workload(trace, traces.load_durations(d), traces.load_memory(m))
    cfg = SimConfig(mode=mode)
    runs = {name: run_policy(name, w, cfg) for name in [*policies, cfg.baseline]}
    held = traces.held_out_mask(trace.function_ids)
    summaries = summarize(runs, np.ones(trace.n_functions, dtype=bool), scope="all", cfg=cfg)
    summaries += summarize(runs, held, scope="held-out", cfg=cfg)
    results = checks(summaries, mode)
    assert len(results) == (4 if mode == "provider" else 6)
    failed = [f"{c.scope}: {c.claim} ({c.detail})" for c in results if not c.ok]
    assert not failed
