"""`preheat bench model`: the fp32 model against the slim one, in one run on one machine.

Per model: bytes on disk, session creation (as the runtime creates it), first inference, and p50/p99
of the serving path (tokenize, run, pool) at batch 1 short text, batch 1 at 128 tokens and batch 8,
for 1 and 2 threads; then the accuracy gate's figures. The two models are measured in turn, run by
run, so load from other processes hits both alike. Prints a table, writes a PNG, and with --json the
same figures under `fp32` and `slim`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layers import paths

SCENARIOS = ("batch1_short", "batch1_128", "batch8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fp32", type=Path, default=paths.FP32_MODEL, help="the reference model directory")
    parser.add_argument("--slim", type=Path, default=paths.DEFAULT_MODEL, help="the slim model directory")
    parser.add_argument("--runs", type=int, default=60, help="timed runs per scenario and model")
    parser.add_argument("--loads", type=int, default=7, help="session creations per model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument(
        "--png", type=Path, default=paths.BUILD / "bench" / "model.png", help="chart to write"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")


def run(args: argparse.Namespace) -> int:
    import json
    import statistics
    import time

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from functions.inference import manifest as manifests
    from functions.inference import tasks
    from functions.inference.errors import ModelLoadError
    from functions.inference.model import OnnxModel
    from functions.inference.tasks.embedding import EmbeddingTask
    from functions.inference.tasks.text import LibraryTokenizer
    from layers import gate, textdata

    # Logs (CI, files) get rich's 80 columns otherwise, which wraps every table row.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.runs < 5 or args.loads < 1:
        console.print("[red]--runs must be >= 5 and --loads >= 1[/]")
        return 2
    try:
        specs = {"fp32": manifests.load(args.fp32), "slim": manifests.load(args.slim)}
    except ModelLoadError as exc:
        console.print(f"[red]{exc}[/] (run `preheat build`)")
        return 1
    dirs = {"fp32": args.fp32, "slim": args.slim}
    heldout = list(textdata.heldout())
    tokenizer_probe = LibraryTokenizer(args.fp32 / "tokenizer.json", max_tokens=128).tokenizer
    long_ids = tokenizer_probe.encode(" ".join(heldout)).ids
    long_text = tokenizer_probe.decode(long_ids[1:-1])  # 126 word pieces + [CLS] + [SEP] = 128
    inputs = {
        "batch1_short": [["How long should I boil an egg for a runny yolk?"]],
        "batch1_128": [[long_text]],
        "batch8": [heldout[i : i + 8] for i in range(0, 8 * 12, 8)],
    }

    def load(name: str, threads: int) -> tuple[EmbeddingTask, float]:
        manifest = specs[name]
        started = time.perf_counter()
        model = OnnxModel.load(
            dirs[name] / manifest.model_file,
            manifest.inputs,
            manifest.outputs,
            threads=threads,
            graph_optimization=manifest.session.graph_optimization,
        )
        created = (time.perf_counter() - started) * 1000
        context = tasks.TaskContext(manifest, model, dirs[name], batch_size=32, truncate=True, max_inputs=2048)
        task = tasks.load(context)
        assert isinstance(task, EmbeddingTask)
        return task, created

    figures: dict[str, dict[str, object]] = {
        name: {
            "model_dir": str(dirs[name]),
            "bytes": sum(f.bytes for n, f in specs[name].files.items() if n.startswith("model.onnx")),
            "graph_optimization": specs[name].session.graph_optimization,
        }
        for name in dirs
    }
    with console.status("session creation and first inference…"):
        creates: dict[str, list[float]] = {"fp32": [], "slim": []}
        firsts: dict[str, list[float]] = {"fp32": [], "slim": []}
        for _ in range(args.loads):
            for name in dirs:
                embedder, created = load(name, 1)
                started = time.perf_counter()
                embedder.embed(inputs["batch1_short"][0])
                firsts[name].append((time.perf_counter() - started) * 1000)
                creates[name].append(created)
        for name in dirs:
            figures[name]["session_create_ms"] = statistics.median(creates[name])
            figures[name]["first_inference_ms"] = statistics.median(firsts[name])

    for threads in args.threads:
        embedders = {name: load(name, threads)[0] for name in dirs}
        for scenario in SCENARIOS:
            batches = inputs[scenario]
            samples: dict[str, list[float]] = {"fp32": [], "slim": []}
            with console.status(f"{scenario}, {threads} thread(s)…"):
                for name in dirs:
                    embedders[name].embed(batches[0])  # warm
                for i in range(args.runs):
                    batch = batches[i % len(batches)]
                    for name in dirs:
                        started = time.perf_counter()
                        embedders[name].embed(batch)
                        samples[name].append((time.perf_counter() - started) * 1000)
            for name in dirs:
                values = np.array(samples[name])
                figures[name][f"{scenario}_t{threads}"] = {
                    "p50_ms": float(np.percentile(values, 50)),
                    "p99_ms": float(np.percentile(values, 99)),
                    "runs": len(values),
                }

    with console.status("accuracy on held-out text…"):
        embedders = {name: load(name, 2)[0] for name in dirs}
        batch1 = {
            name: np.concatenate([embedders[name].embed([t]).values for t in heldout]) for name in dirs
        }
        for embedder in embedders.values():
            embedder.model.batch_size = 8
        batched = {name: embedders[name].embed(heldout).values for name in dirs}
        scores1 = gate.embedding_scores(batch1["fp32"], batch1["slim"])
        scores8 = gate.embedding_scores(batched["fp32"], batched["slim"])
    failures = list(gate.EmbeddingScores.worst(scores1, scores8).failures(gate.EmbeddingThresholds()))
    accuracy: dict[str, object] = {
        "heldout_texts": len(heldout),
        "batch1": scores1.as_dict(),
        "batch8": scores8.as_dict(),
        "worst": gate.EmbeddingScores.worst(scores1, scores8).as_dict(),
        "failures": list(gate.EmbeddingScores.worst(scores1, scores8).failures(gate.EmbeddingThresholds())),
    }
    figures["slim"]["accuracy"] = accuracy
    figures["fp32"]["accuracy"] = {"reference": True}

    def num(name: str, key: str, sub: str | None = None) -> float:
        value = figures[name][key]
        return float(value[sub] if sub else value)  # type: ignore[index, arg-type]

    ratios = {
        "size_ratio": num("slim", "bytes") / num("fp32", "bytes"),
        "session_create_speedup": num("fp32", "session_create_ms") / num("slim", "session_create_ms"),
        "first_inference_speedup": num("fp32", "first_inference_ms") / num("slim", "first_inference_ms"),
        **{
            f"{scenario}_t{t}_speedup": num("fp32", f"{scenario}_t{t}", "p50_ms")
            / num("slim", f"{scenario}_t{t}", "p50_ms")
            for scenario in SCENARIOS
            for t in args.threads
        },
    }

    table = Table(title="preheat bench model: fp32 vs slim (same machine, measured in turn)")
    table.add_column("figure")
    table.add_column("fp32", justify="right")
    table.add_column("slim", justify="right")
    table.add_column("fp32/slim", justify="right")
    table.add_row(
        "model bytes (MB)",
        f"{num('fp32', 'bytes') / 1e6:.1f}",
        f"{num('slim', 'bytes') / 1e6:.1f}",
        f"slim = {ratios['size_ratio']:.1%}",
    )
    table.add_row(
        "session create (ms, median)",
        f"{num('fp32', 'session_create_ms'):.1f}",
        f"{num('slim', 'session_create_ms'):.1f}",
        f"{ratios['session_create_speedup']:.2f}x",
    )
    table.add_row(
        "first inference (ms, median)",
        f"{num('fp32', 'first_inference_ms'):.2f}",
        f"{num('slim', 'first_inference_ms'):.2f}",
        f"{ratios['first_inference_speedup']:.2f}x",
    )
    for t in args.threads:
        for scenario in SCENARIOS:
            key = f"{scenario}_t{t}"
            table.add_row(
                f"{scenario}, {t} thread(s): p50 / p99 ms",
                f"{num('fp32', key, 'p50_ms'):.2f} / {num('fp32', key, 'p99_ms'):.2f}",
                f"{num('slim', key, 'p50_ms'):.2f} / {num('slim', key, 'p99_ms'):.2f}",
                f"{ratios[key + '_speedup']:.2f}x",
            )
    console.print(table)
    worst = accuracy["worst"]
    assert isinstance(worst, dict)
    console.print(
        f"accuracy on {len(heldout)} held-out texts (worst of batch 1 and batch 8): mean cosine "
        f"{worst['mean_cosine']:.4f}, min {worst['min_cosine']:.4f}, Spearman {worst['spearman']:.4f}, "
        f"top-1 {worst['top1']:.1%} ({worst['top1_counted']} counted)"
        + (
            f"  [red]FAILS: {'; '.join(failures)}[/]"
            if failures
            else "  [green]passes the gate[/]"
        )
    )

    _plot(args.png, figures, ratios, args.threads)
    console.print(f"chart: {args.png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**figures, "ratios": ratios}, indent=2))
        console.print(f"figures: {args.json}")
    return 0


def _plot(
    target: Path, figures: dict[str, dict[str, object]], ratios: dict[str, float], threads: list[int]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    target.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 2.4]})
    labels = ["size (MB)", "session create (ms)", "first inference (ms)"]
    keys = [("bytes", 1e6), ("session_create_ms", 1.0), ("first_inference_ms", 1.0)]
    x = np.arange(len(labels))
    for offset, name, color in ((-0.2, "fp32", "#9aa5b1"), (0.2, "slim", "#d9480f")):
        values = [float(figures[name][k]) / scale for k, scale in keys]  # type: ignore[arg-type]
        bars = left.bar(x + offset, values, 0.4, label=name, color=color)
        left.bar_label(bars, fmt="%.1f", fontsize=8)
    left.set_xticks(x, labels, fontsize=8)
    left.set_title("cold-start costs")
    left.legend()
    scenarios = [f"{s}_t{t}" for t in threads for s in SCENARIOS]
    x = np.arange(len(scenarios))
    for offset, name, color in ((-0.2, "fp32", "#9aa5b1"), (0.2, "slim", "#d9480f")):
        p50 = [figures[name][s]["p50_ms"] for s in scenarios]  # type: ignore[index]
        p99 = [figures[name][s]["p99_ms"] for s in scenarios]  # type: ignore[index]
        bars = right.bar(x + offset, p50, 0.4, label=f"{name} p50", color=color)
        right.errorbar(
            x + offset,
            p50,
            yerr=[np.zeros(len(p50)), np.array(p99) - np.array(p50)],
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
        right.bar_label(bars, fmt="%.1f", fontsize=7)
    right.set_xticks(x, [s.replace("_t", "\n") + " thr" for s in scenarios], fontsize=7)
    right.set_ylabel("ms (bar p50, whisker p99)")
    right.set_title("serving latency: tokenize + run + pool")
    right.legend()
    fig.suptitle(
        f"slim = {ratios['size_ratio']:.0%} of fp32 bytes, session create {ratios['session_create_speedup']:.1f}x faster"
    )
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
