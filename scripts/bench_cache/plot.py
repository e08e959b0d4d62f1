"""The cache bench's chart: latency CDFs, coloured by the level that answered, styled by phase."""

from __future__ import annotations

from pathlib import Path

from scripts.bench_cache.replay import Phase


def plot(path: Path, model_runs: list[float], phases: dict[str, Phase]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # Colour says which level answered, line style which phase: hits of one level line up.
    colours = {"memory": "tab:green", "redis": "tab:red", "dynamodb": "tab:purple", "miss": "tab:orange"}
    styles = {"memory": "-", "redis": "--", "dynamodb": "-.", "outage": ":"}
    fig, ax = plt.subplots(figsize=(9, 5))
    ordered = np.sort(np.asarray(model_runs) * 1000)
    ax.plot(
        ordered, np.linspace(0, 1, len(ordered)), color="black", lw=2, label=f"model alone (n={len(ordered)})"
    )
    for name, phase in phases.items():
        for served_by, values in sorted(phase.latencies.items()):
            if len(values) < 5:
                continue
            ordered = np.sort(np.asarray(values) * 1000)
            ax.plot(
                ordered,
                np.linspace(0, 1, len(ordered)),
                color=colours.get(served_by, "tab:gray"),
                linestyle=styles.get(name, "-"),
                label=f"{name} phase: {served_by} (n={len(ordered)})",
            )
    ax.set_xscale("log")
    ax.set_xlabel("latency per request (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("preheat cache tier: latency by the level that answered")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
