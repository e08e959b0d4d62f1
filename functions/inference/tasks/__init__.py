"""Tasks turn a request's values into model tensors and back: the KServe pre/post-processing step.

Each task is a module named in TASKS with one `load(context) -> Task` function; the manifest's `task`
picks it, and only that module is imported, so a model pays at init for its own task alone. A task
owns its manifest section (manifest.py), its pre- and post-processing here, and its build recipe
(layers/tasks/). To add one: a module here, a row in TASKS, a recipe in layers/tasks/.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec
import numpy as np

from functions.inference.manifest import Manifest, TensorSpec

if TYPE_CHECKING:
    from functions.inference.model import OnnxModel
    from functions.inference.tasks.text import Item, Rows, Wrap

TASKS: dict[str, str] = {
    "text-embedding": "functions.inference.tasks.embedding",
    "text-classification": "functions.inference.tasks.classification",
    "tensor": "functions.inference.tasks.tensor",
}


class Inference(msgspec.Struct, frozen=True):
    outputs: dict[str, np.ndarray]
    cache: str | None = None  # the cache level that answered ("miss": the model ran); None: no cache


class Task(Protocol):
    """What the data plane needs of any task. `inputs`/`outputs` are the tensors v2 clients see."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def infer(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> Inference: ...

    def warmup(self) -> None: ...


@runtime_checkable
class Embeds(Protocol):
    """Tasks that serve /v1/embeddings."""

    dimensions: int

    def embed(self, texts: Sequence[str]) -> Rows: ...


@runtime_checkable
class Classifies(Protocol):
    """Tasks that serve /v1/classify (and, for one-score pair models, /v1/rerank)."""

    labels: tuple[str, ...]
    pairs: bool

    def classify(self, items: Sequence[Item]) -> Rows: ...


class TaskContext(msgspec.Struct, frozen=True):
    """Everything a task's `load` may use: built once at init by the runtime."""

    manifest: Manifest
    model: OnnxModel
    model_dir: Path
    batch_size: int
    truncate: bool
    max_inputs: int
    wrap: Wrap | None = None  # the cache's wrapper for a text task's rows, when a cache is configured


def load(context: TaskContext) -> Task:
    module = importlib.import_module(TASKS[context.manifest.task])  # manifests.load checked the name
    task: Task = module.load(context)
    return task
