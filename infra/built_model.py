"""The model a stack serves (`preheat.model`) and the build outputs made from it, checked before use.

`preheat.model` names a model directory (build/models/NAME, from `preheat build [--model SPEC] --name
NAME`). Synth (infra/stacks/preheat.py) and the twin of the stack (scripts/twin/stack.py) refuse a
model that was not built, naming the command that builds it. Synth also refuses a model layer or a
SageMaker archive that holds another model (or another build of this one): both are compared with
the model directory by their manifests (which hold the checksum of every file, and the settings that
are not in any file: pooling, labels, token limit), so switching models, or rebuilding one, can
never deploy what was built before. Reads files only: no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from functions.inference import manifest as manifests
from functions.inference.errors import ModelLoadError
from infra.config import ConfigError, PreheatConfig, build_layers_command
from layers import model_layer, sagemaker_artifacts
from layers import paths as build_paths


@dataclass(frozen=True)
class BuiltModel:
    name: str  # the directory's name, as preheat.model gives it
    directory: Path
    manifest: manifests.Manifest

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def describe(self) -> str:
        """For descriptions: `minilm (text-embedding)`."""
        return f"{self.name} ({self.manifest.task})"


def build_command(config: PreheatConfig) -> str:
    """The command that builds the model preheat.model names."""
    if config.model == build_paths.DEFAULT_MODEL_NAME:
        command = "preheat build"
    else:
        command = f"preheat build --model SPEC --name {config.model}"
    if config.models_dir.resolve() != build_paths.MODELS.resolve():
        command += f" --out {config.models_dir}"
    return command


def built_models(models_dir: Path) -> list[str]:
    """The model directories under models_dir (those with a manifest)."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if (p / manifests.MANIFEST_FILE).is_file())


def require_model(config: PreheatConfig) -> BuiltModel:
    """The model preheat.model names, or a ConfigError giving the command that builds it."""
    directory = config.model_dir
    if not (directory / manifests.MANIFEST_FILE).is_file():
        others = built_models(config.models_dir)
        raise ConfigError(
            f"preheat.model is {config.model!r}, but {directory} holds no built model (no manifest.json). "
            f"Build it with `{build_command(config)}` (SPEC: a Hugging Face model directory or an ONNX file), "
            f"or name a built one: -c preheat:model=NAME (--model NAME for serve, deploy sagemaker and the benchmarks)"
            + (f" (built in {config.models_dir}: {', '.join(others)})" if others else "")
        )
    try:
        manifest = manifests.load(directory)
    except ModelLoadError as exc:
        raise ConfigError(f"preheat.model {config.model!r}: {exc.message}") from None
    return BuiltModel(config.model, directory, manifest)


def _stale(
    config: PreheatConfig, what: str, where: Path, held: manifests.Manifest | None, model: BuiltModel, fix: str
) -> ConfigError:
    holds = "no readable model" if held is None else f"model {held.name!r} (id {held.model_id[:12]})"
    if held is not None and held.model_id == model.model_id:
        holds += " with other manifest settings"
    return ConfigError(
        f"the {what} {where} holds {holds}, not the model preheat.model names: {model.name!r} as built in "
        f"{model.directory} (id {model.model_id[:12]}). Run `{build_layers_command(config)}` to build "
        f"it from that model, or {fix}"
    )


def require_model_layer(config: PreheatConfig, model: BuiltModel) -> Path:
    """config.layers.model, if it holds exactly `model`; else a ConfigError saying `preheat build layers`."""
    layer = config.layers.model
    held = model_layer.held(layer)
    if held is None or held != model.manifest:
        raise _stale(config, "model layer", layer, held, model, "point preheat.layers.model at a layer built from it")
    return layer


def require_model_data(config: PreheatConfig, model: BuiltModel) -> Path:
    """config.sagemaker.modelData, if it holds exactly `model`; else a ConfigError saying `preheat build layers`."""
    data = config.sagemaker.model_data
    held = sagemaker_artifacts.packed(data)
    if held is None or held != model.manifest:
        raise _stale(
            config,
            "SageMaker model data", data, held, model, "point preheat.sagemaker.modelData at an archive of it"
        )
    return data
