"""`preheat simulate`: replay real serverless traces against every warm-keeping policy.

    preheat simulate --trace ../shared/traces/azure2019/invocations_per_minute.csv --mode aws --policy all

Prints a table (the whole trace and the held-out functions preheat was not tuned on), checks the
issue's done-when conditions, writes `--json` and PNG plots (cold starts against cost for every
policy; one function's day).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from warmers.simulator.run import PolicyRun
    from warmers.traces import Trace

DEFAULT_TRACE = Path("../shared/traces/azure2019/invocations_per_minute.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace", type=Path, default=DEFAULT_TRACE, help="invocations per minute CSV (either layout)"
    )
    parser.add_argument("--durations", type=Path, help="durations CSV (default: beside --trace)")
    parser.add_argument("--memory", type=Path, help="memory CSV (default: beside --trace)")
    parser.add_argument("--mode", choices=("provider", "aws"), default="provider")
    parser.add_argument("--policy", default="all", help="NAME[,NAME...], 'keepalive' or 'all' (default)")
    parser.add_argument("--seed", type=int, default=2019, help="arrival, duration and memory draws")
    parser.add_argument(
        "--pairing", choices=("sample", "by-id"), default="sample", help="profile per function"
    )
    parser.add_argument("--cold-start-ms", type=float, help="cold-start penalty (default: 364, measured)")
    parser.add_argument("--platform-keepalive-min", type=float, help="Lambda's idle keep-alive (default 10)")
    parser.add_argument("--ping-hold-ms", type=float, default=100.0)
    parser.add_argument(
        "--holdout-fraction", type=float, default=0.3, help="functions kept aside (hash split)"
    )
    parser.add_argument("--limit", type=int, help="simulate only the first N functions (quick runs)")
    parser.add_argument("--json", type=Path, help="write results here (one object per policy)")
    parser.add_argument("--plots", type=Path, default=Path("build/simulate"), help="PNG directory")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--plot-function", help="function id for the one-day plot (default: picked)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a done-when condition fails")


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from warmers import traces
    from warmers.policies import parse_policies
    from warmers.simulator import report
    from warmers.simulator.run import (
        DEFAULT_COLD_START_MS,
        DEFAULT_PLATFORM_KEEPALIVE_MIN,
        SimConfig,
        record_function,
        run_policy,
        summarize,
    )
    from warmers.simulator.workload import build_workload

    console = Console()
    started = time.perf_counter()
    try:
        names = parse_policies(args.policy)
        trace = traces.load_invocations(args.trace)
        dur_path, mem_path = traces.profile_paths(args.trace)
        durations = traces.load_durations(args.durations or dur_path)
        memory = traces.load_memory(args.memory or mem_path)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if args.limit:
        keep = np.zeros(trace.n_functions, dtype=bool)
        keep[: args.limit] = True
        trace = trace.subset(keep)
    cfg = SimConfig(
        mode=args.mode,
        seed=args.seed,
        cold_start_ms=args.cold_start_ms if args.cold_start_ms is not None else DEFAULT_COLD_START_MS,
        platform_keepalive_min=(
            args.platform_keepalive_min
            if args.platform_keepalive_min is not None
            else DEFAULT_PLATFORM_KEEPALIVE_MIN
        ),
        ping_hold_ms=args.ping_hold_ms,
    )
    workload = build_workload(trace, durations, memory, seed=args.seed, pairing=args.pairing)
    held_out = traces.held_out_mask(trace.function_ids, args.holdout_fraction)
    console.print(
        f"{trace.n_functions} functions ({int(held_out.sum())} held out), {int(trace.counts.sum()):,} invocations "
        f"over {trace.minutes} minutes ({trace.layout} layout); {cfg.mode} mode, seed {cfg.seed}, "
        f"cold start {cfg.cold_start_ms:g} ms, platform keep-alive {cfg.platform_keepalive_min:g} min"
    )
    all_names = list(dict.fromkeys([*names, cfg.baseline]))
    runs = {}
    with Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks = {n: progress.add_task(n, total=trace.n_functions) for n in all_names}
        for name in all_names:
            runs[name] = run_policy(name, workload, cfg, progress=lambda n, k: progress.advance(tasks[n], k))
    scopes = {"all": np.ones(trace.n_functions, dtype=bool)}
    if held_out.any():
        scopes["held-out"] = held_out
    summaries = [s for scope, mask in scopes.items() for s in summarize(runs, mask, scope=scope, cfg=cfg)]
    results = report.checks(summaries, cfg.mode)
    elapsed = time.perf_counter() - started
    for table in report.render_tables(summaries, cfg.mode, list(scopes)):
        console.print(table)
    console.print(report.CITATION, style="dim")
    for c in results:
        mark = "[green]PASS[/green]" if c.ok else "[red]FAIL[/red]"
        console.print(f"{mark} \\[{c.scope}] {c.claim}: {c.detail}")
    console.print(f"simulated {len(all_names)} policies in {elapsed:.1f} s")
    if args.json:
        report.write_json(
            args.json, report.to_json(summaries, cfg, trace=str(args.trace), checks_=results, seconds=elapsed)
        )
        console.print(f"wrote {args.json}")
    if not args.no_plots:
        tradeoff = args.plots / f"simulate-{cfg.mode}-tradeoff.png"
        report.plot_tradeoff(summaries, cfg.mode, tradeoff)
        f = _pick_function(args.plot_function, trace, runs, held_out, cfg.mode)
        shown = [
            n
            for n in ("none", "hybrid-histogram" if cfg.mode == "provider" else "ping", "preheat")
            if n in runs
        ]
        days = []
        for name in shown or list(runs)[:3]:
            rec = record_function(name, workload, f, cfg)
            days.append(report.FunctionDay(name, rec.warm_per_minute, rec.cold_minutes))
        day_png = args.plots / f"simulate-{cfg.mode}-function.png"
        report.plot_function(trace.function_ids[f], trace.counts[f], days, cfg.mode, day_png)
        console.print(f"wrote {tradeoff} and {day_png}")
    return 1 if args.check and not all(c.ok for c in results) else 0


def _pick_function(
    wanted: str | None,
    trace: Trace,
    runs: dict[str, PolicyRun],
    held_out: npt.NDArray[np.bool_],
    mode: str,
) -> int:
    """The requested function, else a held-out one with a busy but not constant day and the most cold starts."""
    import numpy as np

    if wanted:
        if wanted not in trace.function_ids:
            raise SystemExit(f"--plot-function {wanted!r} is not in the trace")
        return int(trace.function_ids.index(wanted))
    inv = trace.counts.sum(axis=1)
    candidates = np.flatnonzero(held_out & (inv >= 100) & (inv <= 3000))
    if candidates.size == 0:
        candidates = np.flatnonzero(inv > 0)
    base = runs["none"] if "none" in runs else next(iter(runs.values()))
    return int(candidates[np.argmax(base.cold[candidates])])
