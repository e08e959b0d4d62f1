"""Tasks turn a request's values into model tensors and back: the KServe pre/post-processing step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from functions.inference.manifest import TensorSpec


class Task(Protocol):
    """What the data plane needs of any task. `inputs`/`outputs` are the tensors clients see."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def infer(
        self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]: ...

    def warmup(self) -> None: ...
