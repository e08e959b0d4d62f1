"""The plots of `preheat bench coldstart` (PNG).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts.bench_coldstart.samples import Series


def plot_sagemaker(series: dict[str, list[float]], results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    panels = (
        ("process start -> /ping 200 (ms)", series["ready"]),
        ("cold request, client-seen (ms)", series["cold"]),
        ("warm request, client-seen (ms)", series["warm"]),
    )
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([data], showfliers=True)
        ax.scatter([1] * len(data), data, s=8, alpha=0.5, color="#2ca02c")
        ax.set_xticks([1], ["sagemaker"])
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    sm = results["sagemaker"]
    fig.suptitle(
        f"SageMaker Serverless in the twin: ready p50 {sm['ping_ready_p50_ms']:.0f} ms, "
        f"cold p50 {sm['cold_p50_ms']:.0f} ms, warm p50 {sm['warm_p50_ms']:.1f} ms"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(series: dict[str, Series], results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    names = tuple(series)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    panels = (
        ("cold start, client-seen (ms)", {n: [s.client_ms for s in series[n].cold] for n in names}),
        (
            "INIT: spawn -> first /next (ms)",
            {n: [s.init_ms or 0.0 for s in series[n].cold] for n in names},
        ),
        ("warm request (model runs), client-seen (ms)", {n: series[n].warm for n in names}),
    )
    colors = {"default": "#1f77b4", "naive": "#d62728", "floor": "#7f7f7f"}
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([data[n] for n in names], showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), list(names))
        for i, name in enumerate(names, start=1):
            ax.scatter([i] * len(data[name]), data[name], s=8, alpha=0.5, color=colors.get(name, "#2ca02c"))
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    ratios = results["ratios"]
    naive = ratios.get("default_over_naive_cold_p50")
    fig.suptitle(
        f"preheat bench coldstart: default cold p50 = {ratios['default_over_floor_cold_p50']:.2f}x floor"
        + (f", {naive:.2f}x naive" if naive is not None else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
