"""The report of `preheat bench coldstart`: the summary (percentiles, ratios, targets met), the
tables, and the plots (scripts/bench_coldstart/plot.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from scripts.bench_coldstart.plot import plot, plot_sagemaker
from scripts.bench_coldstart.samples import (
    COLD_OVER_FLOOR_MAX,
    COLD_OVER_NAIVE_MAX,
    WARM_OVER_FLOOR_MAX_MS,
    Series,
)


def summarize(series: dict[str, Series]) -> dict[str, Any]:
    from scripts.twin.traffic import percentile

    out: dict[str, Any] = {}
    for name, s in series.items():
        cold = [x.client_ms for x in s.cold]
        inits = [x.init_ms for x in s.cold if x.init_ms is not None]
        out[name] = {
            "cold_p50_ms": round(percentile(cold, 50), 2),
            "cold_p99_ms": round(percentile(cold, 99), 2),
            "init_p50_ms": round(percentile(inits, 50), 2),
            "init_p99_ms": round(percentile(inits, 99), 2),
            "warm_p50_ms": round(percentile(s.warm, 50), 3),
            "warm_p99_ms": round(percentile(s.warm, 99), 3),
            "cold_n": len(cold),
            "warm_n": len(s.warm),
            "warm_cache": dict(s.warm_cache),
            "what": s.note,
        }
        if s.hits:
            out[name].update(
                cache_hit_p50_ms=round(percentile(s.hits, 50), 3),
                cache_hit_p99_ms=round(percentile(s.hits, 99), 3),
                cache_hit_n=len(s.hits),
            )
    f = out["floor"]
    ratios: dict[str, float] = {}
    for name in (n for n in series if n not in ("naive", "floor")):
        d = out[name]
        prefix = "default" if name == "default" else name
        ratios[f"{prefix}_over_floor_cold_p50"] = round(d["cold_p50_ms"] / f["cold_p50_ms"], 3)
        ratios[f"{prefix}_over_floor_init_p50"] = round(d["init_p50_ms"] / f["init_p50_ms"], 3)
        ratios[f"{prefix}_minus_floor_warm_p50_ms"] = round(d["warm_p50_ms"] - f["warm_p50_ms"], 3)
        if "naive" in out:
            ratios[f"{prefix}_over_naive_cold_p50"] = round(d["cold_p50_ms"] / out["naive"]["cold_p50_ms"], 3)
            ratios[f"{prefix}_over_naive_init_p50"] = round(d["init_p50_ms"] / out["naive"]["init_p50_ms"], 3)
    out["ratios"] = ratios
    out["targets"] = {
        "cold_at_most_1.2x_floor": ratios["default_over_floor_cold_p50"] <= COLD_OVER_FLOOR_MAX,
        "warm_at_most_floor_plus_0.3ms": ratios["default_minus_floor_warm_p50_ms"] <= WARM_OVER_FLOOR_MAX_MS,
    }
    if "naive" in out:
        out["targets"]["cold_at_most_one_third_of_naive"] = ratios["default_over_naive_cold_p50"] <= COLD_OVER_NAIVE_MAX
    return out


def report(
    console: Any, series: dict[str, Series], results: dict[str, Any], args: argparse.Namespace, elapsed: float
) -> None:
    import os
    import platform

    from rich.table import Table

    from scripts.bench_texts import describe

    names = tuple(series)
    table = Table(
        title=f"cold starts ({args.cold} each) and warm requests ({args.warm} each, every one running the "
        "model), ms, through the HTTPS Function URL",
        title_justify="left",
    )
    for column in ("function", "cold p50", "cold p99", "INIT p50", "INIT p99", "warm p50", "warm p99"):
        table.add_column(column, justify="left" if column == "function" else "right")
    for name in names:
        r = results[name]
        table.add_row(
            name,
            f"{r['cold_p50_ms']:.1f}",
            f"{r['cold_p99_ms']:.1f}",
            f"{r['init_p50_ms']:.1f}",
            f"{r['init_p99_ms']:.1f}",
            f"{r['warm_p50_ms']:.2f}",
            f"{r['warm_p99_ms']:.2f}",
        )
    for name in names:
        r = results[name]
        if "cache_hit_p50_ms" in r:
            table.add_row(
                f"{name}, cache hit", "", "", "", "", f"{r['cache_hit_p50_ms']:.2f}", f"{r['cache_hit_p99_ms']:.2f}"
            )
    console.print(table)
    for name in names:
        console.print(f"  {name}: {results[name]['what']}", style="dim", highlight=False)
    console.print(
        f"  warm: {describe()}, the same for every function; cache hit: {len(series['default'].hits)} "
        "repeats of texts already answered (the instance's own cache)",
        style="dim",
        highlight=False,
    )
    ratios, targets = results["ratios"], results["targets"]

    def verdict(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]not met[/]"

    for name in (n for n in names if n not in ("naive", "floor")):
        prefix = "default" if name == "default" else name
        line = (
            f"{name} / floor: cold p50 {ratios[f'{prefix}_over_floor_cold_p50']:.2f}x, INIT p50 "
            f"{ratios[f'{prefix}_over_floor_init_p50']:.2f}x, warm p50 "
            f"{ratios[f'{prefix}_minus_floor_warm_p50_ms']:+.2f} ms"
        )
        if f"{prefix}_over_naive_cold_p50" in ratios:
            line += f"; / naive: cold p50 {ratios[f'{prefix}_over_naive_cold_p50']:.2f}x"
        console.print(line, highlight=False)
    console.print(
        f"targets: cold <= {COLD_OVER_FLOOR_MAX}x floor {verdict(targets['cold_at_most_1.2x_floor'])}; "
        f"warm <= floor + {WARM_OVER_FLOOR_MAX_MS} ms {verdict(targets['warm_at_most_floor_plus_0.3ms'])}"
        + (
            f"; cold <= 1/3 naive {verdict(targets['cold_at_most_one_third_of_naive'])}"
            if "cold_at_most_one_third_of_naive" in targets
            else ""
        )
    )
    if "phases" in results:
        report_phases(console, results["phases"])
    if "sagemaker" in results:
        report_sagemaker(console, results, args)
    results["meta"] = {
        "target": args.target,
        "cold": args.cold,
        "warm": args.warm,
        "warm_texts": describe(),
        "variants": list(args.variant),
        "seconds": round(elapsed, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    plot(series, results, args.png)
    console.print(f"plot: {args.png}   ({elapsed:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=2)
        )
        console.print(f"json: {args.json}")


def report_phases(console: Any, phases: dict[str, dict[str, Any]]) -> None:
    """One row per init phase, one column per function (p50 over its cold starts), and the difference
    between each and the floor."""
    from rich.table import Table

    from scripts import init_phases

    names = [n for n in phases if n != "floor"] + (["floor"] if "floor" in phases else [])
    rows = init_phases.merge_orders([list(phases[name]["phases_p50_ms"]) for name in names])
    table = Table(
        title="where a cold start goes: p50 of each phase inside the instances, ms (from their CloudWatch Logs)",
        title_justify="left",
    )
    table.add_column("phase")
    for name in names:
        table.add_column(f"{name} (n={phases[name]['instances']})", justify="right")
    compared = [n for n in names if n != "floor"] if "floor" in phases else []
    for name in compared:
        table.add_column(f"{name} - floor", justify="right")

    def cell(name: str, phase: str) -> float | None:
        value = phases[name]["phases_p50_ms"].get(phase)
        return None if value is None else float(value)

    for phase in rows:
        values = [cell(n, phase) for n in names]
        diffs = [(cell(n, phase) or 0.0) - (cell("floor", phase) or 0.0) for n in compared]
        table.add_row(
            phase, *("" if v is None else f"{v:.1f}" for v in values), *(f"{d:+.1f}" for d in diffs)
        )
    for name in names:
        for phase, ms in phases[name]["beside_p50_ms"].items():
            table.add_row(
                f"  {phase} (in a thread, beside the above)",
                *(f"{ms:.1f}" if n == name else "" for n in names),
                *("" for _ in compared),
                style="dim",
            )
    totals = [phases[n]["init_p50_ms"] + phases[n]["first_p50_ms"] for n in names]
    table.add_row(
        "INIT + first response (p50s)",
        *(f"{t:.1f}" for t in totals),
        *(f"{totals[names.index(n)] - totals[names.index('floor')]:+.1f}" for n in compared),
        style="bold",
    )
    console.print(table)
    console.print(
        f"  {init_phases.RUNTIME}: Lambda's Init Duration minus the handler module's own time; "
        f"{init_phases.FIRST}: the first invocation's Duration (REPORT).",
        style="dim",
        highlight=False,
    )


def report_sagemaker(console: Any, results: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.table import Table

    sm, default = results["sagemaker"], results["default"]
    table = Table(
        title=f"SageMaker Serverless beside Lambda ({args.cold} cold, {args.warm} warm), ms",
        title_justify="left",
    )
    for column in (
        "where",
        "start -> ready p50",
        "start -> ready p99",
        "cold p50",
        "cold p99",
        "warm p50",
        "warm p99",
    ):
        table.add_column(column, justify="left" if column == "where" else "right")
    table.add_row(
        "SageMaker (process -> /ping 200)",
        f"{sm['ping_ready_p50_ms']:.1f}",
        f"{sm['ping_ready_p99_ms']:.1f}",
        f"{sm['cold_p50_ms']:.1f}",
        f"{sm['cold_p99_ms']:.1f}",
        f"{sm['warm_p50_ms']:.2f}",
        f"{sm['warm_p99_ms']:.2f}",
    )
    table.add_row(
        "Lambda default (spawn -> INIT done)",
        f"{default['init_p50_ms']:.1f}",
        f"{default['init_p99_ms']:.1f}",
        f"{default['cold_p50_ms']:.1f}",
        f"{default['cold_p99_ms']:.1f}",
        f"{default['warm_p50_ms']:.2f}",
        f"{default['warm_p99_ms']:.2f}",
    )
    console.print(table)
    console.print(
        f"  SageMaker: {sm['what']}; the socket accepted connections after {sm['listening_p50_ms']:.1f} ms "
        "(p50). Lambda: HTTPS Function URL, raw client; SageMaker: boto3 (signing included).",
        style="dim",
        highlight=False,
    )
    series = results.get("_sagemaker_series")
    if series:
        plot_sagemaker(series, results, args.png.with_name(args.png.stem + "-sagemaker.png"))
