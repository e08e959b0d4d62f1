"""Write a model directory the runtime can load: the ONNX file(s), tokenizer.json, manifest.json."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from functions.inference import manifest as manifests
from functions.inference.manifest import (
    ClassificationSpec,
    EmbeddingSpec,
    Manifest,
    SessionHints,
    TensorSpec,
    TextSpec,
)


def tool_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("preheat", "onnxruntime", "onnx", "tokenizers", "torch", "transformers", "numpy", *extra):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def write_tokenizer(source: Path, target: Path, max_tokens: int) -> None:
    """Copy a tokenizer.json without fixed-length padding, truncating at the model's limit."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.save(str(target))


def write_manifest(
    model_dir: Path,
    *,
    name: str,
    version: str,
    task: str,
    model_file: str,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    text: TextSpec | None = None,
    embedding: EmbeddingSpec | None = None,
    classification: ClassificationSpec | None = None,
    aliases: tuple[str, ...] = (),
    session: SessionHints | None = None,
    source: dict[str, Any] | None = None,
    build: dict[str, Any] | None = None,
) -> Manifest:
    """Checksum every file in model_dir (except the manifest) and write manifest.json."""
    files = {
        path.relative_to(model_dir).as_posix(): manifests.file_entry(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != manifests.MANIFEST_FILE
    }
    manifest = Manifest(
        name=name,
        version=version,
        task=task,
        model_file=model_file,
        inputs=inputs,
        outputs=outputs,
        files=files,
        text=text,
        embedding=embedding,
        classification=classification,
        aliases=aliases,
        session=session or SessionHints(),
        source=source or {},
        tools=tool_versions(),
        build=build or {},
    )
    (model_dir / manifests.MANIFEST_FILE).write_bytes(manifests.dumps(manifest))
    return manifests.load(model_dir)
