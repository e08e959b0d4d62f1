"""`text-embedding`: text -> tokens -> ONNX -> pooling (mean, CLS or none) -> L2 norm (optional).

One vector per text, served by /v1/embeddings (OpenAI) and v2 (`text` BYTES in, `embedding` out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from functions.inference.errors import ModelLoadError
from functions.inference.manifest import EmbeddingSpec, TensorSpec, TextSpec
from functions.inference.tasks import Inference, TaskContext
from functions.inference.tasks.text import (
    Rows,
    RowSource,
    TextModel,
    items_from_feeds,
    open_text_model,
    text_inputs,
    warm_up,
)

OUTPUT = "embedding"


class Pooling:
    """The head: token states [n, tokens, d] (or vectors [n, d] when pooled in the graph) -> [n, d]."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        self.output = spec.output
        self.width = spec.dimensions
        self.pooling = spec.pooling
        self.normalize = spec.normalize

    def __call__(self, output: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "none":
            pooled = output
        elif self.pooling == "cls":
            pooled = output[:, 0, :]
        else:
            weights = mask[:, :, None].astype(output.dtype)
            pooled = (output * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if pooled.ndim != 2 or pooled.shape[1] != self.width:
            raise ModelLoadError(
                f"output {self.output!r} pooled ({self.pooling}) to shape {list(pooled.shape)}, "
                f"the manifest says {self.width} dimensions per text"
            )
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)


class EmbeddingTask:
    name = "text-embedding"

    def __init__(self, model: TextModel, source: RowSource, text: TextSpec, spec: EmbeddingSpec, *, max_inputs: int) -> None:
        self.model = model  # the warm-up runs here, past any cache
        self.source = source
        self.text = text
        self.dimensions = spec.dimensions
        self.max_inputs = max_inputs
        self.inputs: tuple[TensorSpec, ...] = text_inputs(text)
        self.outputs: tuple[TensorSpec, ...] = (TensorSpec(OUTPUT, "float32", ("batch", spec.dimensions)),)

    def embed(self, texts: Sequence[str]) -> Rows:
        return self.source.rows(texts)

    def infer(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> Inference:
        rows = self.source.rows(items_from_feeds(feeds, self.text, max_inputs=self.max_inputs))
        return Inference({OUTPUT: rows.values}, cache=rows.served_by)

    def warmup(self) -> None:
        warm_up(self.model)


def load(context: TaskContext) -> EmbeddingTask:
    manifest = context.manifest
    assert manifest.text is not None and manifest.embedding is not None  # manifests.load checks them
    if manifest.text.pairs:
        raise ModelLoadError("a text-embedding model takes single texts: the manifest's text.pairs must be false")
    model, source = open_text_model(context, Pooling(manifest.embedding))
    return EmbeddingTask(model, source, manifest.text, manifest.embedding, max_inputs=context.max_inputs)
