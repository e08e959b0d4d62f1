"""`text-classification`: sequence classifiers (one text in, a score per label out) and cross-encoders
(a pair of texts in, usually one relevance score out).

Logits [n, labels] -> softmax (one label per text), sigmoid (multi-label; one-logit cross-encoders)
or nothing. Served by /v1/classify, /v1/rerank (pair models with one score) and v2 (`text`, and
`text_pair` for pair models, as BYTES in; `scores` FP32 [batch, labels] and `label` BYTES out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from functions.inference.errors import ModelLoadError
from functions.inference.manifest import ClassificationSpec, TensorSpec, TextSpec
from functions.inference.tasks import Inference, TaskContext
from functions.inference.tasks.text import (
    Item,
    Rows,
    RowSource,
    TextModel,
    items_from_feeds,
    open_text_model,
    text_inputs,
    warm_up,
)

SCORES = "scores"
LABEL = "label"


class Activation:
    """The head: logits [n, labels] -> scores [n, labels]."""

    def __init__(self, spec: ClassificationSpec) -> None:
        self.output = spec.output
        self.width = len(spec.labels)
        self.activation = spec.activation

    def __call__(self, output: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits = output.astype(np.float32, copy=False)
        if logits.ndim == 1:
            logits = logits[:, None]
        if logits.ndim != 2 or logits.shape[1] != self.width:
            raise ModelLoadError(
                f"output {self.output!r} has shape {list(output.shape)}, the manifest names {self.width} labels"
            )
        if self.activation == "softmax":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
        elif self.activation == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            scores = logits
        return scores.astype(np.float32, copy=False)


class ClassificationTask:
    name = "text-classification"

    def __init__(
        self, model: TextModel, source: RowSource, text: TextSpec, spec: ClassificationSpec, *, max_inputs: int
    ) -> None:
        self.model = model  # the warm-up runs here, past any cache
        self.source = source
        self.text = text
        self.labels = spec.labels
        self.activation = spec.activation
        self.pairs = text.pairs
        self.max_inputs = max_inputs
        self._labels = np.array(spec.labels, dtype=object)
        self.inputs: tuple[TensorSpec, ...] = text_inputs(text)
        self.outputs: tuple[TensorSpec, ...] = (
            TensorSpec(SCORES, "float32", ("batch", len(spec.labels))),
            TensorSpec(LABEL, "bytes", ("batch",)),
        )

    def classify(self, items: Sequence[Item]) -> Rows:
        return self.source.rows(items)

    def top_labels(self, scores: np.ndarray) -> np.ndarray:
        """The best label of each row, as a BYTES array."""
        picked: np.ndarray = self._labels[scores.argmax(axis=1)]
        return picked

    def infer(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> Inference:
        rows = self.source.rows(items_from_feeds(feeds, self.text, max_inputs=self.max_inputs))
        results = {SCORES: rows.values}
        if outputs is None or LABEL in outputs:
            results[LABEL] = self.top_labels(rows.values)
        return Inference(results, cache=rows.served_by)

    def warmup(self) -> None:
        warm_up(self.model)


def load(context: TaskContext) -> ClassificationTask:
    manifest = context.manifest
    assert manifest.text is not None and manifest.classification is not None  # manifests.load checks them
    model, source = open_text_model(context, Activation(manifest.classification))
    return ClassificationTask(model, source, manifest.text, manifest.classification, max_inputs=context.max_inputs)
