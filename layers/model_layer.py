"""The model layer: a model directory under model/, so that Lambda mounts it at /opt/model
(the runtime's default PREHEAT_MODEL_DIR). One layer per model (layers/paths.py model_layer)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from functions.inference import manifest as manifests
from functions.inference.errors import ModelLoadError
from layers import paths
from layers.archive import Sizes, write_zip

MODEL = "model"  # the layer's one folder: /opt/model once mounted


@dataclass(frozen=True)
class ModelLayer:
    layer_dir: Path
    zip_path: Path
    sizes: Sizes
    model_name: str
    model_id: str


def build(model_dir: Path, layer_dir: Path | None = None) -> ModelLayer:
    """Copy a verified model directory into layer_dir/model/ and zip it beside layer_dir (default:
    the layer of the model directory's name, build/layers/model-NAME)."""
    layer_dir = paths.model_layer(model_dir.name) if layer_dir is None else layer_dir
    manifest = manifests.load(model_dir)
    manifests.verify(model_dir, manifest)  # never package a model that does not match its manifest
    staging = layer_dir.with_name(layer_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    target = staging / MODEL
    target.mkdir(parents=True)
    for name in (manifests.MANIFEST_FILE, *manifest.files):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(model_dir / name, target / name)
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if layer_dir.exists():
        shutil.rmtree(layer_dir)
    staging.rename(layer_dir)
    sizes = write_zip(layer_dir, paths.layer_zip(layer_dir))
    return ModelLayer(layer_dir, paths.layer_zip(layer_dir), sizes, manifest.name, manifest.model_id)


def held(layer_dir: Path) -> manifests.Manifest | None:
    """The manifest of the model a layer directory holds, or None if it holds none (or an unreadable one)."""
    try:
        return manifests.load(layer_dir / MODEL)
    except ModelLoadError:
        return None


def holds(layer_dir: Path, model_dir: Path) -> bool:
    """Whether layer_dir holds exactly the build in model_dir: the same manifest (every file's
    checksum, and the settings no file holds)."""
    held_model = held(layer_dir)
    if held_model is None:
        return False
    try:
        return held_model == manifests.load(model_dir)
    except ModelLoadError:
        return False
