"""Valid requests for any built model, from its manifest alone: one per route it serves, with inputs
that differ by index.

Whatever talks to a served model (the twin's ready curl, the demo, the benchmarks, the layer probe)
asks here instead of assuming the default's task, name or inputs: `/v1/embeddings` for embedders,
`/v1/classify` for classifiers (pairs for cross-encoders) and `/v1/rerank` for one-score pair models,
the Open Inference Protocol's `/v2/models/NAME/infer` for every task (BYTES text for text tasks,
tensors drawn from the declared shapes and dtypes for `tensor` models), and SageMaker's
`/invocations` with the first route's body. `request(i)` gives the i-th of a sequence of distinct
requests, so that benchmarks of warm latency run the model every time rather than hit a cache.

Tensor inputs: a dynamic axis gets length 1; floats are drawn from N(0, 1), integers from {0, 1}
(valid as indices and ids for any model), booleans at random, all seeded by the index.
It lives in layers/ because the layer probe (layers/probe.py) uses it; scripts import it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference import manifest as manifests
from functions.inference.dtypes import OIP_BY_NUMPY
from functions.inference.manifest import Manifest, TensorSpec

EMBEDDINGS = "/v1/embeddings"
CLASSIFY = "/v1/classify"
RERANK = "/v1/rerank"
INVOCATIONS = "/invocations"

# Words for texts that differ by index in their words, not only in a number (tokenizers map numbers
# to few ids, and some vocabularies have none of them).
_WORDS = (
    "the cat sat on a mat while the dog ran past big red blue small houses near rivers and old "
    "trees under bright winter skies as people walked to quiet markets in the early morning"
).split()
_DOCUMENTS = 3  # per rerank request


@dataclass(frozen=True)
class Request:
    path: str  # e.g. /v1/embeddings, /v2/models/NAME/infer
    body: dict[str, Any]
    method: str = "POST"

    def json(self) -> bytes:
        return json.dumps(self.body).encode()


class ModelRequests:
    """Requests for the model a manifest describes, by the manifest's name (what `model` must say)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.task = manifest.task
        self.infer_path = f"/v2/models/{manifest.name}/infer"
        classification = manifest.classification
        pairs = manifest.text is not None and manifest.text.pairs
        routes: list[str] = []
        if manifest.task == "text-embedding":
            routes.append(EMBEDDINGS)
        elif manifest.task == "text-classification":
            routes.append(CLASSIFY)
            if pairs and classification is not None and len(classification.labels) == 1:
                routes.append(RERANK)
        routes += [self.infer_path, INVOCATIONS]
        self.routes: tuple[str, ...] = tuple(routes)  # the first is the task's own route
        self.pairs = pairs

    @classmethod
    def of(cls, model_dir: Path) -> ModelRequests:
        return cls(manifests.load(model_dir))

    @property
    def path(self) -> str:
        """The task's own route: what a client of this model calls first."""
        return self.routes[0]

    def request(self, i: int = 0, path: str | None = None, *, text: str | None = None) -> Request:
        """The i-th request to `path` (default: the task's own route); different i, different inputs.
        `text` replaces the generated text (a pair model's query), e.g. a benchmark's own texts;
        tensor inputs depend on i alone."""
        path = self.path if path is None else path
        single = text if text is not None else sentence(i)
        first = text if text is not None else query(i)
        if path == EMBEDDINGS and EMBEDDINGS in self.routes:
            return Request(path, {"input": single, "model": self.name})
        if path == CLASSIFY and CLASSIFY in self.routes:
            item: str | list[list[str]] = [[first, document(i, 0)]] if self.pairs else single
            return Request(path, {"input": item, "model": self.name})
        if path == RERANK and RERANK in self.routes:
            documents = [document(i, k) for k in range(_DOCUMENTS)]
            return Request(path, {"query": first, "documents": documents, "model": self.name})
        if path == self.infer_path:
            return Request(path, {"inputs": self._tensors(i, first if self.pairs else single)})
        if path == INVOCATIONS:
            return Request(path, self.request(i, self.routes[0], text=text).body)
        raise ValueError(f"model {self.name!r} ({self.task}) does not serve {path}: it serves {', '.join(self.routes)}")

    def sample(self, path: str | None = None) -> Request:
        return self.request(0, path)

    def _tensors(self, i: int, first: str) -> list[dict[str, Any]]:
        if self.manifest.text is not None:
            from functions.inference.tasks.text import text_inputs  # the task's own v2 inputs

            values = {"text": first, "text_pair": document(i, 0)}
            return [_tensor(spec, np.array([values[spec.name]], dtype=object)) for spec in text_inputs(self.manifest.text)]
        rng = np.random.default_rng(i)
        return [_tensor(spec, _draw(spec, rng, i)) for spec in self.manifest.inputs]


def sentence(i: int) -> str:
    """The i-th of a sequence of different sentences (its words and its number differ); the 0th,
    the sample, reads like one."""
    if i == 0:
        return "Serverless inference without paying for cold starts."
    n = len(_WORDS)
    words = " ".join(_WORDS[(i // n**k + 5 * k) % n] for k in range(4))  # i in base n, one word a digit
    return f"Request {i}: {words} in the early morning."


def query(i: int) -> str:
    if i == 0:
        return "How do I avoid cold starts on AWS Lambda?"
    return f"what is {_WORDS[i % len(_WORDS)]} number {i}?"


def document(i: int, k: int) -> str:
    return f"{sentence(i * _DOCUMENTS + k)} It answers question {i}."


def _draw(spec: TensorSpec, rng: np.random.Generator, i: int) -> np.ndarray:
    shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
    if spec.dtype == "bytes":
        return np.full(shape, f"input {i}", dtype=object)
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 2, shape).astype(dtype)


def _tensor(spec: TensorSpec, array: np.ndarray) -> dict[str, Any]:
    data = [str(v) for v in array.ravel()] if array.dtype == object else array.ravel().tolist()
    return {"name": spec.name, "shape": list(array.shape), "datatype": OIP_BY_NUMPY[spec.dtype], "data": data}
