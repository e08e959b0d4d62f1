"""`tensor`: any ONNX model, typed arrays in and out, no pre- or post-processing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from functions.inference.errors import ModelLoadError, PreheatError
from functions.inference.model import OnnxModel
from functions.inference.tasks import Inference, TaskContext


class TensorTask:
    name = "tensor"

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.inputs = model.inputs
        self.outputs = model.outputs

    def infer(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> Inference:
        return Inference(self.model.run(feeds, outputs))

    def warmup(self) -> None:
        """Run once on zeros, every dynamic axis set to 1, so the first request pays no lazy setup."""
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            shape = tuple(dim if isinstance(dim, int) and dim > 0 else 1 for dim in spec.shape)
            dtype = object if spec.dtype == "bytes" else spec.dtype
            feeds[spec.name] = (
                np.full(shape, "", dtype=object) if dtype is object else np.zeros(shape, dtype=dtype)
            )
        try:
            self.model.run(feeds)
        except PreheatError as exc:
            raise ModelLoadError(f"warm-up inference on zeros failed: {exc.message}") from exc


def load(context: TaskContext) -> TensorTask:
    return TensorTask(context.model)
