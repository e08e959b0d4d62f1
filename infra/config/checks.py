"""Checks against the filesystem at synth: the build outputs the config points at exist, or the error
says which command builds them."""

from __future__ import annotations

from pathlib import Path

from functions.errors import ConfigError
from infra.config.schema import PreheatConfig
from layers import paths as build_paths


def build_layers_command(config: PreheatConfig) -> str:
    """The command that builds the layers and SageMaker artifacts of config's model, whatever cdk.json names."""
    command = "preheat build layers"
    if config.model != build_paths.DEFAULT_MODEL_NAME:
        command += f" -c preheat:model={config.model}"
    if config.models_dir.resolve() != build_paths.MODELS.resolve():
        command += f" -c preheat:modelsDir={config.models_dir}"
    return command


def require_layers(config: PreheatConfig) -> tuple[Path, Path]:
    """The model and deps layer directories, or a ConfigError that says how to build them."""
    model = config.layers.model
    deps = config.layers.deps(config.lambda_.architecture)
    missing = [
        f"{path} (needs {inner}/ inside)"
        for path, inner in ((model, "model"), (deps, "python"))
        if not (path / inner).is_dir()
    ]
    if missing:
        raise ConfigError(
            "Lambda layer directories are missing: "
            + "; ".join(missing)
            + f". Run `{build_layers_command(config)}` first, or point preheat.layers.model / "
            "preheat.layers.depsRoot at them."
        )
    return model, deps


def require_sagemaker(config: PreheatConfig, *, image: bool) -> Path:
    """The SageMaker build context (image=True) or model data, or a ConfigError that says what to do."""
    sm = config.sagemaker
    if image:
        if not (sm.context_dir / "Dockerfile").is_file():
            raise ConfigError(
                f"the SageMaker image build context {sm.context_dir} has no Dockerfile. Build it "
                "(`preheat build layers` writes build/sagemaker/context/), point preheat.sagemaker.contextDir at "
                "one, give a prebuilt image with preheat.sagemaker.imageUri, or turn SageMaker off with "
                "-c preheat:sagemaker.enabled=false"
            )
        return sm.context_dir
    if not sm.model_data.is_file():
        raise ConfigError(
            f"the SageMaker model data {sm.model_data} is missing. Build it (`{build_layers_command(config)}` "
            f"writes {sm.model_data.name}), point preheat.sagemaker.modelData at one, or turn SageMaker off "
            "with -c preheat:sagemaker.enabled=false"
        )
    return sm.model_data
