"""`preheat bench model [--model NAME]`: a built model's slim directory against its fp32 one, in one
run on one machine, for any task.

Per model: bytes on disk, session creation (as the runtime creates it), first inference, and p50/p99
of the serving path (text tasks: tokenize, run, pool or score, at batch 1 short, batch 1 at 128
tokens or the model's limit, and batch 8; tensor models: one sample and a batch of 8), for 1 and 2
threads; then the task's accuracy gate, scored as the build scored it. The two models are measured
in turn, run by run, so load from other processes hits both alike. Prints a table, writes a PNG, and
with --json the same figures under `fp32` and `slim`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layers import paths

WORK = {
    "text-embedding": "tokenize + run + pool",
    "text-classification": "tokenize + run + scores",
    "tensor": "run",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help=f"a model built by `preheat build` under --models (default: {paths.DEFAULT_MODEL_NAME})",
    )
    parser.add_argument("--models", type=Path, default=paths.MODELS, help="where model directories are")
    parser.add_argument("--fp32", type=Path, default=None, help="the reference model directory (default: NAME-fp32)")
    parser.add_argument("--slim", type=Path, default=None, help="the slim model directory (default: NAME)")
    parser.add_argument("--sample", type=Path, default=None, help="score accuracy on this data instead (as build)")
    parser.add_argument(
        "--shape", action="append", default=[], metavar="NAME=DIMS", help="tensor input shapes (default: the build's)"
    )
    parser.add_argument("--runs", type=int, default=60, help="timed runs per scenario and model")
    parser.add_argument("--loads", type=int, default=7, help="session creations per model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument("--png", type=Path, default=None, help="chart to write (default: build/bench/model[-NAME].png)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")


def run(args: argparse.Namespace) -> int:
    from layers import SpecError

    try:
        return _run(args)
    except SpecError as exc:
        print(f"preheat bench model: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import json
    import statistics
    import time

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from functions.inference import manifest as manifests
    from functions.inference.errors import ModelLoadError
    from functions.inference.runtime import open_model, open_task
    from layers import samples
    from layers import tasks as recipes

    # Logs (CI, files) get rich's 80 columns otherwise, which wraps every table row.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    if args.runs < 5 or args.loads < 1:
        console.print("[red]--runs must be >= 5 and --loads >= 1[/]")
        return 2
    name = args.model or paths.DEFAULT_MODEL_NAME
    dirs = {
        "fp32": args.fp32 or args.models / f"{name}-fp32",
        "slim": args.slim or args.models / name,
    }
    try:
        specs = {key: manifests.load(folder) for key, folder in dirs.items()}
    except ModelLoadError as exc:
        build = "preheat build" + (f" --model SPEC --name {name}" if args.model else "")
        console.print(f"[red]{exc}[/] (run `{build}`)")
        return 1
    task_name = specs["slim"].task
    if specs["fp32"].task != task_name:
        console.print(f"[red]{dirs['fp32']} is a {specs['fp32'].task} model, {dirs['slim']} a {task_name} one[/]")
        return 2
    recipe = recipes.recipe(task_name)
    fp32_manifest = specs["fp32"]
    data = _data(fp32_manifest, specs["slim"].build, dirs["fp32"], args.sample, samples.parse_shapes(args.shape))
    inputs, call = _scenarios(task_name, fp32_manifest, dirs["fp32"], data)

    def load_timed(key: str) -> tuple[Any, float]:
        """The task as open_task builds it (1 thread), and how long its session alone took to create."""
        manifest = specs[key]
        started = time.perf_counter()
        model = open_model(dirs[key], manifest, threads=1)
        created = (time.perf_counter() - started) * 1000
        return open_task(dirs[key], manifest=manifest, model=model), created

    model_files = {key: {specs[key].model_file, specs[key].model_file + ".data"} for key in dirs}
    figures: dict[str, dict[str, object]] = {
        key: {
            "model_dir": str(dirs[key]),
            "task": task_name,
            "bytes": sum(f.bytes for n, f in specs[key].files.items() if n in model_files[key]),
            "graph_optimization": specs[key].session.graph_optimization,
        }
        for key in dirs
    }
    first_scenario = next(iter(inputs))
    with console.status("session creation and first inference…"):
        creates: dict[str, list[float]] = {"fp32": [], "slim": []}
        firsts: dict[str, list[float]] = {"fp32": [], "slim": []}
        for _ in range(args.loads):
            for key in dirs:
                task, created = load_timed(key)
                started = time.perf_counter()
                call(task, inputs[first_scenario][0])
                firsts[key].append((time.perf_counter() - started) * 1000)
                creates[key].append(created)
        for key in dirs:
            figures[key]["session_create_ms"] = statistics.median(creates[key])
            figures[key]["first_inference_ms"] = statistics.median(firsts[key])

    for threads in args.threads:
        loaded = {key: open_task(dirs[key], manifest=specs[key], threads=threads) for key in dirs}
        for scenario, batches in inputs.items():
            timings: dict[str, list[float]] = {"fp32": [], "slim": []}
            with console.status(f"{scenario}, {threads} thread(s)…"):
                for key in dirs:
                    call(loaded[key], batches[0])  # warm
                for i in range(args.runs):
                    batch = batches[i % len(batches)]
                    for key in dirs:
                        started = time.perf_counter()
                        call(loaded[key], batch)
                        timings[key].append((time.perf_counter() - started) * 1000)
            for key in dirs:
                values = np.array(timings[key])
                figures[key][f"{scenario}_t{threads}"] = {
                    "p50_ms": float(np.percentile(values, 50)),
                    "p99_ms": float(np.percentile(values, 99)),
                    "runs": len(values),
                }

    with console.status("accuracy on the gate's held-out data…"):
        gate = recipe.gate(dirs["fp32"], fp32_manifest, data)
        measured = gate.measure(dirs["slim"] / specs["slim"].model_file, specs["slim"].session.graph_optimization)
    accuracy: dict[str, object] = {
        "data": data.description,
        "batch1": measured.batch1.as_dict(),
        "batch8": measured.batched.as_dict(),
        "worst": measured.scores.as_dict(),
        "thresholds": gate.thresholds,
        "failures": list(measured.failures),
    }
    figures["slim"]["accuracy"] = accuracy
    figures["fp32"]["accuracy"] = {"reference": True}
    scenarios = list(inputs)

    def num(key: str, field: str, sub: str | None = None) -> float:
        value = figures[key][field]
        return float(value[sub] if sub else value)  # type: ignore[index, arg-type]

    ratios = {
        "size_ratio": num("slim", "bytes") / num("fp32", "bytes"),
        "session_create_speedup": num("fp32", "session_create_ms") / num("slim", "session_create_ms"),
        "first_inference_speedup": num("fp32", "first_inference_ms") / num("slim", "first_inference_ms"),
        **{
            f"{scenario}_t{t}_speedup": num("fp32", f"{scenario}_t{t}", "p50_ms")
            / num("slim", f"{scenario}_t{t}", "p50_ms")
            for scenario in scenarios
            for t in args.threads
        },
    }

    table = Table(title=f"{name} ({task_name}): fp32 vs slim, measured in turn")
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
        for scenario in scenarios:
            key = f"{scenario}_t{t}"
            table.add_row(
                f"{scenario}, {t} thread(s): p50 / p99 ms",
                f"{num('fp32', key, 'p50_ms'):.2f} / {num('fp32', key, 'p99_ms'):.2f}",
                f"{num('slim', key, 'p50_ms'):.2f} / {num('slim', key, 'p99_ms'):.2f}",
                f"{ratios[key + '_speedup']:.2f}x",
            )
    console.print(table)
    cells = ", ".join(f"{h} {v}" for h, v in measured.scores.cells())
    verdict = f"FAILS: {'; '.join(measured.failures)}" if measured.failures else "passes the gate"
    console.print(
        f"accuracy, worst of batch 1 and batch 8: {cells}  {verdict}\n(data: {data.summary()})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

    png = args.png or paths.BUILD / "bench" / ("model.png" if name == paths.DEFAULT_MODEL_NAME else f"model-{name}.png")
    _plot(png, figures, ratios, scenarios, args.threads, f"{name}: {WORK[task_name]}")
    console.print(f"chart: {png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**figures, "ratios": ratios}, indent=2))
        console.print(f"figures: {args.json}")
    return 0


def _data(
    manifest: Any, build: dict[str, Any], fp32_dir: Path, sample: Path | None, shapes: dict[str, tuple[int, ...]]
) -> Any:
    """The gate's data as the build chose it (its --sample while that file is unchanged, the built-in
    text sets, or samples drawn with the build's shapes), unless --sample / --shape say otherwise."""
    import hashlib

    from layers import samples

    used = build.get("accuracy", {}).get("data", {})
    if sample is None and used.get("source") == "sample":
        file = Path(used.get("file", ""))
        if file.is_file() and hashlib.sha256(file.read_bytes()).hexdigest() == used.get("sha256"):
            sample = file
    if manifest.text is not None:
        return samples.text_split(sample, pairs=manifest.text.pairs)
    if not shapes:
        shapes = {k: tuple(v) for k, v in (used.get("shapes") or {}).items()}
    return samples.tensor_split(fp32_dir / manifest.model_file, manifest.inputs, sample, shapes)


def _scenarios(
    task: str, manifest: Any, fp32_dir: Path, data: Any
) -> tuple[dict[str, list[Any]], Callable[[Any, Any], Any]]:
    """Inputs per scenario (a list of batches, cycled through) and how to run one batch."""
    import numpy as np

    if task == "tensor":
        feeds = list(data.gate)
        batchable = all(isinstance(s.shape[0], str) for s in manifest.inputs if s.shape)
        inputs = {"batch1": [f for f in feeds[:12]]}
        if batchable:
            inputs["batch8"] = [
                {n: np.concatenate([f[n] for f in feeds[i : i + 8]]) for n in feeds[0]} for i in range(0, 24, 8)
            ]
        return inputs, lambda t, feed: t.infer(feed)
    from functions.inference.tasks.text import LibraryTokenizer
    from layers import builtin_pairs, heldout

    texts = list(heldout())
    items: Sequence[Any] = list(builtin_pairs(texts)) if manifest.text.pairs else texts
    tokens = min(128, manifest.text.max_tokens)
    probe = LibraryTokenizer(fp32_dir / manifest.text.tokenizer, max_tokens=tokens // 2 if manifest.text.pairs else tokens)

    def long_text(source: Sequence[str]) -> str:
        ids = probe.tokenizer.encode(" ".join(source)).ids
        decoded: str = probe.tokenizer.decode(ids, skip_special_tokens=True)
        return decoded

    long_item: Any = (long_text(texts[0::2]), long_text(texts[1::2])) if manifest.text.pairs else long_text(texts)
    inputs = {
        "batch1_short": [[items[0]]],
        f"batch1_{tokens}": [[long_item]],
        "batch8": [list(items[i : i + 8]) for i in range(0, 8 * 12, 8)],
    }
    method = "embed" if task == "text-embedding" else "classify"
    return inputs, lambda t, batch: getattr(t, method)(batch)


def _plot(
    target: Path,
    figures: dict[str, dict[str, object]],
    ratios: dict[str, float],
    scenario_names: list[str],
    threads: list[int],
    title: str,
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
    for offset, key, color in ((-0.2, "fp32", "#9aa5b1"), (0.2, "slim", "#d9480f")):
        values = [float(figures[key][k]) / scale for k, scale in keys]  # type: ignore[arg-type]
        bars = left.bar(x + offset, values, 0.4, label=key, color=color)
        left.bar_label(bars, fmt="%.1f", fontsize=8)
    left.set_xticks(x, labels, fontsize=8)
    left.set_title("cold-start costs")
    left.legend()
    scenarios = [f"{s}_t{t}" for t in threads for s in scenario_names]
    x = np.arange(len(scenarios))
    for offset, key, color in ((-0.2, "fp32", "#9aa5b1"), (0.2, "slim", "#d9480f")):
        p50 = [figures[key][s]["p50_ms"] for s in scenarios]  # type: ignore[index]
        p99 = [figures[key][s]["p99_ms"] for s in scenarios]  # type: ignore[index]
        bars = right.bar(x + offset, p50, 0.4, label=f"{key} p50", color=color)
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
    right.set_title(f"serving latency: {title}")
    right.legend()
    fig.suptitle(
        f"slim = {ratios['size_ratio']:.0%} of fp32 bytes, session create {ratios['session_create_speedup']:.1f}x faster"
    )
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)
