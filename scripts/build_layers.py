"""`preheat build layers`: Lambda layers (model, deps for x86_64 and arm64, deps for the local Python),
the function's code with Python 3.12 bytecode, the SageMaker model.tar.gz and container context, with a
size report against Lambda's limits.

The model is the stack's: cdk.json's `preheat.model` with the same `-c KEY=VALUE` overrides synth
takes (or `--model NAME|DIR`), and its layer and archive go where synth reads them (preheat.layers.model,
preheat.sagemaker.modelData: by default build/layers/model-NAME and build/sagemaker/model-NAME.tar.gz,
one per model, so that switching models never deploys the layer of another)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from layers import paths

ARCHES = (*paths.LAMBDA_ARCHITECTURES, "local")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch",
        nargs="+",
        choices=ARCHES,
        default=list(ARCHES),
        help="which deps layers to build (default: all)",
    )
    parser.add_argument(
        "--model",
        metavar="NAME|DIR",
        help="the model for the model layer and SageMaker archive: a name under build/models, or a model "
        "directory (default: preheat.model in cdk.json's context)",
    )
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE",
        help="a CDK context override, as `cdk synth -c` takes it (e.g. -c preheat:model=NAME); repeat",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild deps layers even if their inputs are unchanged"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from infra.config import ConfigError
    from layers import bytecode, deps_layer, limits, model_layer, sagemaker_artifacts, unzipped_bytes
    from layers import function_code as function_code_bundle
    from scripts.twin.models import chosen_model

    # Logs (CI, files) get rich's 80 columns otherwise, which wraps every table row.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    started = time.perf_counter()
    try:
        config, chosen = chosen_model(args.model, args.context)
    except ConfigError as exc:
        console.print(f"[red]no model to package:[/] {exc}")
        return 1
    table = Table(title="Lambda layers and SageMaker artifacts")
    for column in ("artifact", "files", "unzipped MB", "zipped MB", "notes"):
        table.add_column(column, justify="right" if "MB" in column or column == "files" else "left")
    checks: list[limits.Check] = []
    with console.status("building layers…") as status:

        def progress(message: str) -> None:
            status.update(f"[bold]{message}[/]  ({time.perf_counter() - started:.0f} s)")
            console.log(message)

        progress(f"model layer from {chosen.directory}")
        model = model_layer.build(chosen.directory, config.layers.model)
        table.add_row(
            _shown(model.layer_dir),
            str(model.sizes.files),
            f"{model.sizes.unzipped / limits.MB:.1f}",
            f"{model.sizes.zipped / limits.MB:.1f}",
            f"{chosen.describe()} -> {paths.MODEL_LAYER_MOUNT}",
        )
        checks.append(
            limits.Check(
                "model layer zipped (direct upload)", model.sizes.zipped, limits.DIRECT_UPLOAD_ZIPPED
            )
        )
        function_code = unzipped_bytes(paths.FUNCTIONS)
        if any(arch != "local" for arch in args.arch):
            python = bytecode.find_interpreter("3.12")
            progress(f"function code with bytecode for Lambda's python3.12 ({python})")
            code = function_code_bundle.build(paths.ROOT, python)
            function_code = unzipped_bytes(code.directory)
            table.add_row(
                str(code.directory.relative_to(paths.ROOT)),
                str(code.modules),
                f"{function_code / limits.MB:.1f}",
                "",
                f"the function's code -> {function_code_bundle.CODE_MOUNT}; {code.pycs} .pyc (Python 3.12)",
            )
        for arch in args.arch:
            target = deps_layer.local_target() if arch == "local" else deps_layer.lambda_target(arch)
            layer = deps_layer.build(
                target, paths.deps_layer(arch), reuse=not args.rebuild, progress=progress
            )
            pruned = sum(p.bytes for p in layer.pruned)
            notes = (
                f"Python {target.python}; pruned {pruned / limits.MB:.1f} MB; "
                + (
                    f"stripped {layer.stripped_bytes / limits.MB:.1f} MB"
                    if layer.strip_tool
                    else "not stripped (no strip tool)"
                )
                + f"; {layer.pyc_files} .pyc"
                + (" (reused)" if layer.reused else "")
            )
            table.add_row(
                str(layer.layer_dir.relative_to(paths.ROOT)),
                str(layer.sizes.files),
                f"{layer.sizes.unzipped / limits.MB:.1f}",
                f"{layer.sizes.zipped / limits.MB:.1f}",
                notes,
            )
            if arch != "local":
                checks += [
                    limits.Check(
                        f"deps-{arch} unzipped (preheat budget)",
                        layer.sizes.unzipped,
                        limits.DEPS_UNZIPPED_BUDGET,
                    ),
                    limits.Check(
                        f"deps-{arch} zipped (direct upload)", layer.sizes.zipped, limits.DIRECT_UPLOAD_ZIPPED
                    ),
                    limits.Check(
                        f"function + model + deps-{arch} unzipped",
                        layer.sizes.unzipped + model.sizes.unzipped + function_code,
                        limits.UNZIPPED_TOTAL,
                    ),
                ]
        progress("SageMaker model.tar.gz and container context")
        sagemaker = sagemaker_artifacts.build(chosen.directory, tarball=config.sagemaker.model_data)
        table.add_row(
            _shown(sagemaker.tarball),
            str(sagemaker.tarball_sizes.files),
            f"{sagemaker.tarball_sizes.unzipped / limits.MB:.1f}",
            f"{sagemaker.tarball_sizes.zipped / limits.MB:.1f}",
            f"{chosen.describe()} -> /opt/ml/model",
        )
        table.add_row(
            str(sagemaker.context.relative_to(paths.ROOT)),
            "",
            f"{unzipped_bytes(sagemaker.context) / limits.MB:.1f}",
            "",
            "docker build context (Dockerfile, requirements.txt, functions/, model/)",
        )
    console.print(table)
    for check in checks:
        console.print(("[green]" if check.ok else "[red]") + check.describe())
    over = [c for c in checks if not c.ok]
    if over:
        console.print(
            f"[red]{len(over)} artifact(s) over Lambda's limits:[/] slim the deps (layers/prune.py) or the model"
        )
        return 1
    console.print(f"[green]layers built[/] for model {chosen.describe()} in {time.perf_counter() - started:.0f} s")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(paths.ROOT)) if path.is_relative_to(paths.ROOT) else str(path)
