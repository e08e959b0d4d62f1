"""Where build outputs go: the contract between `preheat build`, `preheat build layers`, the CDK app
and the local twin. Paths are anchored at the repository root, so they hold from any working directory."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
FUNCTIONS = ROOT / "functions"
BUILD = ROOT / "build"

# Model directories (manifest.json + files), as written by `preheat build [--model SPEC --name NAME]`:
# models/NAME/ (the slim model, what is served) and models/NAME-fp32/ (the exported original).
MODELS = BUILD / "models"
DEFAULT_MODEL_NAME = "minilm"
FP32_SUFFIX = "-fp32"


def model_dir(name: str, models: Path = MODELS) -> Path:
    return models / name


def fp32_model_dir(name: str, models: Path = MODELS) -> Path:
    return models / f"{name}{FP32_SUFFIX}"


DEFAULT_MODEL = model_dir(DEFAULT_MODEL_NAME)  # the slim model, served by default
FP32_MODEL = fp32_model_dir(DEFAULT_MODEL_NAME)  # the exported original, same layout

# Lambda layers, as directories (CDK's Code.from_asset zips them at synth); zips beside them are
# only for size reports.
LAYERS = BUILD / "layers"
MODEL_LAYER_MOUNT = "/opt/model"


def model_layer(name: str) -> Path:
    """The model layer of model NAME (holds model/ -> mounts at /opt/model). One per model, so that
    switching `preheat:model` can never deploy the layer of the model served before."""
    return LAYERS / f"model-{name}"


DEFAULT_MODEL_LAYER = model_layer(DEFAULT_MODEL_NAME)

DEPS_MOUNT = "/opt/python"
LAMBDA_ARCHITECTURES = ("x86_64", "arm64")


def deps_layer(arch: str) -> Path:
    """`x86_64`, `arm64` or `local` (the Python running this, for the twin and the layer proof test).
    Each holds python/ -> /opt/python."""
    return LAYERS / f"deps-{arch}"


def layer_zip(layer_dir: Path) -> Path:
    return layer_dir.with_name(layer_dir.name + ".zip")


DEPS_LOCAL = deps_layer("local")

# SageMaker: the model archive (extracted to /opt/ml/model) and the container's docker build context.
SAGEMAKER = BUILD / "sagemaker"


def sagemaker_model_data(name: str) -> Path:
    """model NAME's archive for SageMaker (extracted to /opt/ml/model), one per model as the layers."""
    return SAGEMAKER / f"model-{name}.tar.gz"


DEFAULT_MODEL_DATA = sagemaker_model_data(DEFAULT_MODEL_NAME)

SAGEMAKER_CONTEXT = SAGEMAKER / "context"
SAGEMAKER_DOCKERFILE = FUNCTIONS / "sagemaker" / "Dockerfile"

# Text for the accuracy gate (held out) and for static quantization (calibration): disjoint sets.
DATA = Path(__file__).resolve().parent / "data"
HELDOUT_TEXT = DATA / "heldout.txt"
CALIBRATION_TEXT = DATA / "calibration.txt"
