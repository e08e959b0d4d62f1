"""The cache bench's tables on the console: levels, outage, cold path, and the cache's log lines."""

from __future__ import annotations

import argparse
from typing import Any


def print_report(console: Any, result: dict[str, Any], args: argparse.Namespace, logged: list[str]) -> None:
    from rich.table import Table

    table = Table(
        title=f"preheat bench cache — {result['model']}, skew {args.skew}, {args.requests} requests/phase"
    )
    for column in ("level", "hit rate", "share", "hit p50", "hit p99", "miss p50", "miss p99"):
        table.add_column(column, justify="right")

    def fmt(value: Any, unit: str = "") -> str:
        return "—" if value is None else f"{value:.3f}{unit}" if unit else f"{value:.1%}"

    table.add_row(
        "model run",
        "",
        "",
        fmt(result["model_run_p50_ms"], " ms"),
        fmt(result["model_run_p99_ms"], " ms"),
        "",
        "",
    )
    for name, row in result["levels"].items():
        table.add_row(
            name,
            fmt(row["hit_rate"]),
            fmt(row["share"]),
            fmt(row["hit_p50_ms"], " ms"),
            fmt(row["hit_p99_ms"], " ms"),
            fmt(row["miss_p50_ms"], " ms"),
            fmt(row["miss_p99_ms"], " ms"),
        )
    console.print(table)
    if "memory_hit_speedup_p50" in result:
        console.print(
            f"in-process hit vs model run at p50: [bold]{result['memory_hit_speedup_p50']}x[/] (target >= 20x)"
        )
    redis_row = result["levels"]["redis"]
    if redis_row["hit_p50_ms"] is not None:
        console.print(
            f"Redis hit p50 on 127.0.0.1: [bold]{redis_row['hit_p50_ms']:.3f} ms[/] (target < 1 ms)"
        )
    if "outage" in result:
        o = result["outage"]
        console.print(
            f"outage ({o['tier']} killed for {o['down_seconds']:.1f} s): {o['requests']} requests, "
            f"[bold]{o['failed_requests']} failed[/] (target 0), p50 {o['p50_ms']:.3f} ms, p99 {o['p99_ms']:.3f} ms, "
            f"max {o['max_ms']:.1f} ms; longest wait on Redis {o['longest_tier_wait_ms']:.1f} ms "
            f"(timeout {args.timeout_ms} ms); {o['redis_hits_after_restart']} Redis hits after the restart"
        )
    if "cold_path" in result:
        cold = Table(title="cold path (fresh processes, median ms)")
        cold.add_column("what")
        cold.add_column("ms", justify="right")
        for group in ("import_ms", "first_call_ms"):
            for name, value in result["cold_path"][group].items():
                cold.add_row(f"{group.split('_')[0]}: {name}", "—" if value is None else f"{value:.1f}")
        for name, pair in result["cold_path"]["handler"].items():
            for key, label in (("init_ms", "init"), ("first_request_ms", "first request (miss + write)")):
                cold.add_row(f"handler {label}: {name}", "—" if pair is None else f"{pair[key]:.1f}")
        console.print(cold)
    if logged:
        console.print(f"cache log lines ({len(logged)}, one per instance per outage and recovery):")
        for line in sorted(set(logged)):
            console.print(f"  {logged.count(line)} x {line}")
