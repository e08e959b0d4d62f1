"""`preheat build`: build the default model into build/models/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("build/models"), help="where model directories go")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from layers.build import build_default
    from layers.source import default_source

    console = Console()
    started = time.perf_counter()
    with console.status("exporting all-MiniLM-L6-v2 to ONNX (torch, offline)…"):
        built = build_default(default_source(), args.out)
    size = sum(f.bytes for f in built.manifest.files.values())
    console.print(
        f"[green]built[/] {built.model_dir} ({size / 1e6:.1f} MB, {len(built.manifest.files)} files, "
        f"export within {built.export_max_abs_diff:.1e} of PyTorch) in {time.perf_counter() - started:.1f} s"
    )
    return 0
