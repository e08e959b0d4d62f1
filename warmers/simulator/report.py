"""What `preheat simulate` shows: the table, the JSON for CI and dashboards, the checks, the plots.

rich and matplotlib are imported inside the functions that draw: the simulator core needs neither.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from warmers.simulator.run import SimConfig, Summary

CITATION = (
    'Trace: Azure Functions 2019 (Shahrad et al., "Serverless in the Wild", USENIX ATC\'20; CC-BY 4.0), '
    "InVitro sample"
)


@dataclass(frozen=True)
class Check:
    scope: str
    claim: str
    ok: bool
    detail: str


def _by(summaries: Sequence[Summary], scope: str) -> dict[str, Summary]:
    return {s.policy: s for s in summaries if s.scope == scope}


def checks(summaries: Sequence[Summary], mode: str) -> list[Check]:
    """The issue's done-when conditions, for every scope that was simulated."""
    out: list[Check] = []
    for scope in dict.fromkeys(s.scope for s in summaries):
        by = _by(summaries, scope)
        me = by.get("preheat")
        if mode == "provider":
            ref = by.get("hybrid-histogram")
            if me and ref:
                ok = (
                    me.p75_cold_start_pct < ref.p75_cold_start_pct
                    and me.wasted_memory_norm <= ref.wasted_memory_norm
                )
                out.append(
                    Check(
                        scope,
                        "preheat: lower p75 cold-start % than hybrid-histogram at no more wasted memory",
                        ok,
                        f"p75 {me.p75_cold_start_pct:.2f}% vs {ref.p75_cold_start_pct:.2f}%, "
                        f"memory {me.wasted_memory_norm:.3f} vs {ref.wasted_memory_norm:.3f}",
                    )
                )
        else:
            for name in ("ping", "target-tracking"):
                ref = by.get(name)
                if me and ref:
                    ok = me.cold_starts < ref.cold_starts and me.dollars_per_day <= ref.dollars_per_day
                    out.append(
                        Check(
                            scope,
                            f"preheat: fewer cold starts than {name} at no more dollars per day",
                            ok,
                            f"{me.cold_starts} vs {ref.cold_starts} cold starts, "
                            f"${me.dollars_per_day:.4f} vs ${ref.dollars_per_day:.4f} a day",
                        )
                    )
        oracle = by.get("oracle")
        if oracle:
            others = [s for s in by.values() if s.policy != "oracle"]
            if mode == "provider":
                ok = all(
                    oracle.p75_cold_start_pct <= s.p75_cold_start_pct
                    and oracle.wasted_memory_norm <= s.wasted_memory_norm
                    for s in others
                )
                detail = f"p75 {oracle.p75_cold_start_pct:.2f}%, memory {oracle.wasted_memory_norm:.3f}"
            else:
                ok = all(oracle.cold_starts <= s.cold_starts for s in others)
                detail = f"{oracle.cold_starts} cold starts, ${oracle.dollars_per_day:.4f} a day"
            out.append(Check(scope, "oracle bounds every policy", ok, detail))
    return out


def to_json(
    summaries: Sequence[Summary], cfg: SimConfig, *, trace: str, checks_: Sequence[Check], seconds: float
) -> dict[str, Any]:
    policies: dict[str, dict[str, Any]] = {}
    for s in summaries:
        row = _row(s, cfg)
        if s.scope == "all":
            policies.setdefault(s.policy, {}).update(row)
        else:
            policies.setdefault(s.policy, {})[s.scope.replace("-", "_")] = row
    config = asdict(cfg)
    config["prices"] = asdict(cfg.prices)
    config["metric_lag_min"], config["pc_lag_min"] = cfg.metric_lag, cfg.pc_lag
    return {
        "mode": cfg.mode,
        "trace": trace,
        "citation": CITATION,
        "config": config,
        "seconds": round(seconds, 2),
        "policies": [{"policy": name, **row} for name, row in policies.items()],
        "checks": [asdict(c) for c in checks_],
    }


def _row(s: Summary, cfg: SimConfig) -> dict[str, Any]:
    row: dict[str, Any] = {
        "description": s.description,
        "functions": s.functions,
        "invocations": s.invocations,
        "cold_starts": s.cold_starts,
        "cold_start_pct": round(s.cold_start_pct, 4),
        "p75_cold_start_pct": round(s.p75_cold_start_pct, 4),
        "wasted_memory_gb_s": round(s.wasted_memory_gb_s, 1),
        "wasted_memory_norm": _finite(s.wasted_memory_norm, 4),
        "pings": s.pings,
        "provisioned_gb_s": round(s.provisioned_gb_s, 1),
        "dollars_per_day": round(s.dollars_per_day, 6),
        "cost_usd_per_day": round(s.cost_usd_per_day, 6),
        "cost_parts_usd_per_day": {k: round(v, 6) for k, v in s.cost_parts.items()},
    }
    return row


def _finite(x: float, digits: int) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(x, digits)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def render_tables(summaries: Sequence[Summary], mode: str, scopes: Sequence[str]) -> list[Any]:
    """One rich table per scope (the whole trace, the held-out functions)."""
    from rich.table import Table

    tables = []
    for scope in scopes:
        by = _by(summaries, scope)
        first = next(iter(by.values()))
        title = f"{mode} mode — {'all' if scope == 'all' else scope} functions ({first.functions})"
        table = Table(title=title, title_justify="left")
        table.add_column("policy", style="bold", no_wrap=True)
        table.add_column("p75 cold %", justify="right")
        table.add_column("cold starts", justify="right")
        table.add_column("cold %", justify="right")
        if mode == "provider":
            table.add_column("wasted memory (norm)", justify="right")
        else:
            table.add_column("+$/day", justify="right")
            table.add_column("pings", justify="right")
            table.add_column("prov. GB-s", justify="right")
        for name, s in by.items():
            cells = [name, f"{s.p75_cold_start_pct:.2f}", f"{s.cold_starts:,}", f"{s.cold_start_pct:.3f}"]
            if mode == "provider":
                cells.append(f"{s.wasted_memory_norm:.3f}")
            else:
                cells += [f"{s.dollars_per_day:,.4f}", f"{s.pings:,}", _compact(s.provisioned_gb_s)]
            table.add_row(*cells, style="green" if name == "preheat" else None)
        tables.append(table)
    return tables


def _compact(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def plot_tradeoff(summaries: Sequence[Summary], mode: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = {"all": "o", "held-out": "s"}
    colors: dict[str, Any] = {}
    cmap = plt.get_cmap("tab10")
    for s in summaries:
        color = colors.setdefault(s.policy, cmap(len(colors) % 10))
        if mode == "provider":
            x, y = s.wasted_memory_norm, s.p75_cold_start_pct
        else:
            x, y = s.dollars_per_day, s.cold_start_pct
        ax.scatter(
            x, y, color=color, marker=markers.get(s.scope, "^"), s=70, edgecolor="black", linewidth=0.4
        )
    handles = [
        Line2D([], [], marker="o", linestyle="", color=c, markeredgecolor="black", label=name)
        for name, c in colors.items()
    ]
    first = ax.legend(
        handles=handles, title="policy", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8
    )
    ax.add_artist(first)
    scope_handles = [
        Line2D([], [], marker=m, linestyle="", color="gray", label=scope) for scope, m in markers.items()
    ]
    ax.legend(
        handles=scope_handles, title="functions", loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8
    )
    if mode == "provider":
        ax.set_xlabel("wasted memory time (normalized to fixed 10-min keep-alive)")
        ax.set_ylabel("cold-start % of the 75th-percentile function")
    else:
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel("added dollars per day (us-east-1 prices; symlog)")
        ax.set_ylabel("cold starts, % of invocations")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Cold starts against cost, {mode} mode (lower left is better)")
    fig.text(0.01, 0.01, CITATION, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight", bbox_extra_artists=[first])
    plt.close(fig)


@dataclass(frozen=True)
class FunctionDay:
    policy: str
    warm: Sequence[int]
    cold_minutes: Sequence[int]


def plot_function(
    function_id: str, invocations: np.ndarray, days: Sequence[FunctionDay], mode: str, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = np.arange(len(invocations))
    fig, axes = plt.subplots(len(days) + 1, 1, figsize=(11, 2.1 * (len(days) + 1)), sharex=True)
    axes[0].bar(minutes, invocations, width=1.0, color="tab:blue")
    axes[0].set_ylabel("invocations\n/ minute")
    axes[0].set_title(f"function {function_id[:12]}… over one day ({mode} mode)")
    for ax, day in zip(axes[1:], days, strict=True):
        ax.step(minutes, day.warm, where="post", color="tab:orange", label="warm instances")
        colds = np.bincount(np.asarray(day.cold_minutes, dtype=np.int64), minlength=len(invocations))
        hit = np.flatnonzero(colds)
        ax.scatter(hit, colds[hit], color="tab:red", marker="x", s=18, label=f"cold starts ({colds.sum()})")
        ax.set_ylabel(day.policy)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("minute of the day")
    fig.text(0.01, 0.005, CITATION, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
