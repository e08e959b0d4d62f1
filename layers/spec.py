"""What `preheat build --model SPEC` is building: read from the model's own files before anything is
exported, so a SPEC that cannot be served fails in a second with one line saying why.

SPEC is a Hugging Face model directory (config.json + weights + tokenizer.json; the
sentence-transformers layout adds modules.json, 1_Pooling/config.json and 2_Normalize) or an ONNX
file (external data beside it allowed; a tokenizer.json and config.json beside it are read too). The
task, pooling, normalization, labels, pairs and the graph's names come from those files; every
`Overrides` field that is set wins. `ModelSpec.notes` says where each setting came from, for the
build report. Build time only: reads JSON and the ONNX graph, imports neither torch nor transformers'
models.

This module holds the resolved spec, its errors and `read`; the readers are spec_huggingface (a
model directory, sentence-transformers layout included), spec_onnx (an ONNX file and its graph
signature) and spec_text (what both take from a tokenizer and config.json: max tokens, pad id,
labels, the fusion shape).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.inference.manifest import POOLINGS, TASKS, TEXT_TASKS, TensorSpec


class SpecError(Exception):
    """A SPEC that cannot be served. The message is one line naming what is missing or unsupported."""


@dataclass(frozen=True)
class Overrides:
    """`preheat build` flags; None means "read it from the model"."""

    task: str | None = None
    tokenizer: Path | None = None
    pooling: str | None = None
    normalize: bool | None = None
    pairs: bool | None = None


@dataclass(frozen=True)
class Fusion:
    """The transformer optimizer's view of the encoder, from config.json; model_type None: no fusions."""

    model_type: str | None
    num_heads: int = 0
    hidden_size: int = 0


@dataclass(frozen=True)
class ModelSpec:
    path: Path  # the SPEC as given
    kind: str  # "huggingface", "sentence-transformers" or "onnx"
    task: str
    model_dir: Path | None = None  # the transformers directory (HF kinds)
    onnx_file: Path | None = None  # the ONNX kind
    config: dict[str, Any] = field(default_factory=dict)
    architecture: str | None = None
    model_type: str | None = None
    fusion: Fusion = field(default_factory=lambda: Fusion(None))
    tokenizer: Path | None = None  # text tasks
    max_tokens: int = 512
    pad_id: int = 0
    pooling: str = "mean"  # text-embedding
    normalize: bool = True
    output: str | None = None  # the graph output the task reads (ONNX kind; HF exports name their own)
    labels: tuple[str, ...] = ()  # text-classification
    activation: str = "softmax"
    pairs: bool = False
    inputs: tuple[TensorSpec, ...] = ()  # the ONNX kind's graph signature
    outputs: tuple[TensorSpec, ...] = ()
    notes: tuple[str, ...] = ()  # where each setting came from

    @property
    def is_text(self) -> bool:
        return self.task in TEXT_TASKS


def read(path: Path, overrides: Overrides = Overrides()) -> ModelSpec:
    if overrides.task is not None and overrides.task not in TASKS:
        raise SpecError(f"--task {overrides.task!r} is not one of {', '.join(TASKS)}")
    if overrides.pooling is not None and overrides.pooling not in POOLINGS:
        raise SpecError(f"--pooling {overrides.pooling!r} is not one of {', '.join(POOLINGS)}")
    if overrides.tokenizer is not None and not overrides.tokenizer.is_file():
        raise SpecError(f"--tokenizer {overrides.tokenizer} does not exist")
    if not path.exists():
        raise SpecError(
            f"--model {path} does not exist: give a Hugging Face model directory or an .onnx file"
        )
    # The readers build ModelSpec and raise SpecError: imported here, after this module is complete.
    if path.is_dir():
        from layers.spec_huggingface import read_directory

        return read_directory(path, overrides)
    from layers.spec_onnx import read_onnx_file

    return read_onnx_file(path, overrides)
