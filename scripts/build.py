"""`preheat build`: build the default model into build/models/ (slim, served by default, and fp32)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from layers import paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=paths.MODELS, help="where model directories go")
    parser.add_argument(
        "--ort-format",
        action="store_true",
        help="write the slim model in ONNX Runtime's format (model.ort) instead of ONNX + external data",
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from layers.build import SlimmingFailed, build_default
    from layers.source import default_source

    # Logs (CI, files) get rich's 80 columns otherwise, which wraps every table row.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    started = time.perf_counter()
    with console.status("building all-MiniLM-L6-v2…") as status:

        def progress(message: str) -> None:
            status.update(f"[bold]{message}[/]  ({time.perf_counter() - started:.0f} s)")
            console.log(message)

        try:
            built = build_default(default_source(), args.out, ort_format=args.ort_format, progress=progress)
        except SlimmingFailed as failure:
            console.print(f"[red]build failed:[/] {failure.code}")
            return 1
    console.print(built.result.report())
    slim = sum(f.bytes for f in built.manifest.files.values())
    fp32 = sum(f.bytes for f in built.fp32_manifest.files.values())
    chosen, scores = built.chosen, built.chosen.scores
    console.print(
        f"[green]built[/] {built.fp32_dir} ({fp32 / 1e6:.1f} MB, export within {built.export_max_abs_diff:.1e} "
        f"of PyTorch)\n[green]built[/] {built.model_dir} ({slim / 1e6:.1f} MB, {chosen.size_ratio:.1%} of fp32): "
        f"{chosen.config.name}; mean cosine {scores.mean_cosine:.4f}, min {scores.min_cosine:.4f}, "
        f"Spearman {scores.spearman:.4f}, top-1 {scores.top1:.1%}; "
        f"{chosen.speedup:.2f}x faster than fp32 at batch 1, 128 tokens; "
        f"in {built.seconds:.0f} s"
    )
    return 0
