"""The model layer: a model directory under model/, so that Lambda mounts it at /opt/model
(the runtime's default PREHEAT_MODEL_DIR)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from functions.inference import manifest as manifests
from layers import paths
from layers.archive import Sizes, write_zip


@dataclass(frozen=True)
class ModelLayer:
    layer_dir: Path
    zip_path: Path
    sizes: Sizes
    model_name: str
    model_id: str


def build(model_dir: Path, layer_dir: Path = paths.MODEL_LAYER) -> ModelLayer:
    """Copy a verified model directory into layer_dir/model/ and zip it beside layer_dir."""
    manifest = manifests.load(model_dir)
    manifests.verify(model_dir, manifest)  # never package a model that does not match its manifest
    staging = layer_dir.with_name(layer_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    target = staging / "model"
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
