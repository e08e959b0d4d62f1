"""The run of `preheat bench coldstart`: its flags, the rounds of cold starts, warm requests and cache
hits over the chosen target, then the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from scripts.bench_coldstart.lambda_target import lambda_twin
from scripts.bench_coldstart.report import report, summarize
from scripts.bench_coldstart.sagemaker_target import sagemaker_twin
from scripts.bench_coldstart.samples import FUNCTIONS, BenchTarget, Series, Variant

# --target name -> (root, state_dir, console, variants=, naive=, model=) -> a context manager yielding a BenchTarget.
TARGETS: dict[str, Callable[..., AbstractContextManager[BenchTarget]]] = {
    "lambda": lambda_twin,
    "sagemaker": sagemaker_twin,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cold", type=int, default=20, help="cold starts per function (default 20)")
    parser.add_argument("--warm", type=int, default=100, help="warm requests per function (default 100)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="lambda", help="where the functions run")
    parser.add_argument("--model", metavar="NAME|DIR",
                        help="a model name under build/models or a model directory (default: preheat.model in cdk.json)")
    parser.add_argument("--phases", action="store_true",
                        help="print the median of each init phase of default and floor, from their logs")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:code=DIR:model=DIR:K=V",
                        help="another copy of the default function taking turns with the others (A/B); "
                        "code= another checkout, model= another model directory, K=V extra environment")
    parser.add_argument("--skip-naive", action="store_true", help="leave the naive baseline out (A/B runs)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--png", type=Path, default=Path("build/bench/coldstart.png"), help="the plot")
    parser.add_argument("--state-dir", type=Path, default=Path(".preheat/bench"))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from scripts.bench_texts import distinct_texts

    if args.cold < 1 or args.warm < 1:
        raise SystemExit("--cold and --warm must be >= 1")
    variants = tuple(Variant.parse(v) for v in args.variant)
    # A log or a CI page is not a terminal: give the tables room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=130)
    root = Path.cwd()
    started = time.perf_counter()
    context = TARGETS[args.target](
        root, args.state_dir, console, variants=variants, naive=not args.skip_naive, model=args.model
    )
    with context as target:
        names: tuple[str, ...] = getattr(target, "names", FUNCTIONS)
        series = {name: Series(note=target.describe(name)) for name in names}
        texts = distinct_texts(args.warm + 1)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("cold starts", total=args.cold * len(names))
            for round_ in range(args.cold):
                # Rotate who goes first, so no function always follows the same one.
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    series[name].cold.append(target.cold(name))
                    progress.advance(task)
            phases = target.phases(names) if args.phases else {}
            task = progress.add_task("warm requests", total=args.warm * len(names))
            for name in names:
                target.warm(name, texts[-1])  # the cold round's last instance is warm; make sure of it, untimed
            for i in range(args.warm):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    sample = target.warm(name, texts[i])
                    series[name].warm.append(sample.client_ms)
                    series[name].warm_cache[sample.cache] = series[name].warm_cache.get(sample.cache, 0) + 1
                    progress.advance(task)
            # Texts the functions answered a moment ago: preheat's cache answers them, apart from the model.
            repeats = max(1, args.warm // 4)
            task = progress.add_task("cache hits (repeated texts)", total=repeats)
            for i in range(repeats):
                for name in names:
                    if name in ("naive", "floor"):
                        continue
                    sample = target.warm(name, texts[i])
                    if sample.cache not in ("-", "miss"):
                        series[name].hits.append(sample.client_ms)
                progress.advance(task)
            extra = getattr(target, "bench", None)  # targets that measure more than the three functions
            extra_results: dict[str, Any] = extra(args.cold, args.warm, progress) if extra else {}
    elapsed = time.perf_counter() - started
    for name, s in series.items():
        ran = s.warm_cache.get("miss", 0) + s.warm_cache.get("-", 0)
        if ran != len(s.warm):
            raise SystemExit(
                f"{name}: {len(s.warm) - ran} of {len(s.warm)} warm requests were cache hits "
                f"({s.warm_cache}); every warm text must be new"
            )
    results = summarize(series)
    results.update(extra_results)
    if phases:
        from scripts import init_phases

        results["phases"] = {name: init_phases.summary(found) for name, found in phases.items() if found}
    report(console, series, results, args, elapsed)
    return 0
