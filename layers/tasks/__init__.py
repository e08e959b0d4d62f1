"""Build recipes, one per task: the build side of functions/inference/tasks/.

A recipe owns what `preheat build` does differently for its task: which data the gate and the
calibration use (`split`), how the model is exported and which manifest sections it gets (`export`),
and what the search needs (`slimming`: the gate, run through the task exactly as it is served, the
calibration feeds, the latency input, the probe that ranks nodes by sensitivity, the search space).
layers/build.py calls these and nothing task-specific. To add a task: a module here with a
`RECIPE` object, a row in RECIPES (and its runtime module in functions/inference/tasks/).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from functions.inference.manifest import (
    ClassificationSpec,
    EmbeddingSpec,
    Manifest,
    TensorSpec,
    TextSpec,
)
from layers.calibrate import Probe
from layers.quantize import QuantConfig
from layers.samples import Split
from layers.spec import Fusion, ModelSpec

RECIPES: dict[str, str] = {
    "text-embedding": "layers.tasks.text_embedding",
    "text-classification": "layers.tasks.text_classification",
    "tensor": "layers.tasks.tensor",
}

Progress = Callable[[str], None]
Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class Measured:
    """A candidate's scores from the task's gate: batch 1, batched, the worse of the two, and what fails."""

    scores: Any
    batch1: Any
    batched: Any
    failures: tuple[str, ...]


class Gate(Protocol):
    """Scores a model file against the fp32 reference on the held-out data, through the served task."""

    thresholds: dict[str, float]

    def measure(self, model_file: Path, graph_optimization: str) -> Measured: ...


@dataclass(frozen=True)
class Sections:
    """What the export wrote into the fp32 directory, as the manifest's fields say it."""

    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    export_max_abs_diff: float
    fusion: Fusion = field(default_factory=lambda: Fusion(None))
    text: TextSpec | None = None
    embedding: EmbeddingSpec | None = None
    classification: ClassificationSpec | None = None
    notes: tuple[str, ...] = ()  # what the export decided (input names, tokenizer tables), for the report

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "text": self.text,
            "embedding": self.embedding,
            "classification": self.classification,
        }


@dataclass(frozen=True)
class Slimming:
    """Everything the search needs from the task."""

    gate: Gate
    space: tuple[QuantConfig, ...]
    calibration_feeds: Sequence[Feed]
    latency_feed: Feed
    latency_input: str  # what latency_feed is, for the report: "128 tokens", "one sample"
    probe: Probe
    shipped_files: tuple[str, ...] = field(default_factory=tuple)  # files beside the model the task needs


class Recipe(Protocol):
    task: str

    def split(self, spec: ModelSpec, sample: Path | None, shapes: dict[str, tuple[int, ...]]) -> Split:
        """The gate's and the calibration's data, checked before anything is exported."""
        ...

    def export(self, spec: ModelSpec, data: Split, target: Path, progress: Progress) -> Sections:
        """Write target/model.onnx (+ .data) and the task's files (tokenizer); say what was written."""
        ...

    def gate(self, fp32_dir: Path, manifest: Manifest, data: Split) -> Gate:
        """The task's gate with its fp32 reference computed (also what `preheat bench model` scores)."""
        ...

    def slimming(self, spec: ModelSpec, data: Split, fp32_dir: Path, manifest: Manifest) -> Slimming: ...


def recipe(task: str) -> Recipe:
    module = importlib.import_module(RECIPES[task])
    found: Recipe = module.RECIPE
    return found
