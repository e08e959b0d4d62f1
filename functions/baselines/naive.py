"""The naive baseline: the same model served the way a first Lambda for it is usually written.

FastAPI behind Mangum, Powertools Logger, Metrics and Tracer imported and created at module level,
the fp32 model (PREHEAT_MODEL_DIR; the benchmark points it at build/models/minilm-fp32 when that
exists), ONNX Runtime with its default session options. Nothing here is wrong, and every piece is
what the documentation shows; it is the cold start that preheat's handler is measured against.
It serves the manifest's task on the route preheat serves it on: /v1/embeddings, /v1/classify, or
the Open Inference Protocol's /v2/models/{name}/infer for tensor models.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from tokenizers import Tokenizer

logger = Logger(service="naive")
metrics = Metrics(namespace="PreheatNaive", service="naive")
tracer = Tracer(service="naive")

MODEL_DIR = os.environ.get("PREHEAT_MODEL_DIR", "/opt/model")
with open(os.path.join(MODEL_DIR, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)
SESSION = ort.InferenceSession(os.path.join(MODEL_DIR, MANIFEST["model_file"]))
TEXT = MANIFEST.get("text")
if TEXT is not None:
    TOKENIZER = Tokenizer.from_file(os.path.join(MODEL_DIR, TEXT["tokenizer"]))
    TOKENIZER.enable_truncation(max_length=TEXT["max_tokens"])
    TOKENIZER.enable_padding(pad_id=TEXT["pad_id"])
    ROLES = {name: role for role, name in TEXT["feeds"].items()}
    OUTPUT = (MANIFEST.get("embedding") or MANIFEST.get("classification"))["output"]
DTYPES = {i["name"]: i["dtype"] for i in MANIFEST["inputs"]}

app = FastAPI(title=f"naive {MANIFEST['task']}")


class EmbeddingsRequest(BaseModel):
    input: str | list[str]
    model: str | None = None


class ClassifyRequest(BaseModel):
    input: str | list[str | list[str]]
    model: str | None = None


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferRequest(BaseModel):
    inputs: list[Tensor]


def run_text(items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    encodings = TOKENIZER.encode_batch(items)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feeds = {"ids": ids, "mask": mask, "type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
    return SESSION.run([OUTPUT], {name: feeds[role].astype(DTYPES[name]) for name, role in ROLES.items()})[0], mask


@app.post("/v1/classify")
def classify(request: ClassifyRequest) -> dict[str, Any]:
    items = [request.input] if isinstance(request.input, str) else [tuple(i) if isinstance(i, list) else i for i in request.input]
    logits, mask = run_text(items)
    spec = MANIFEST["classification"]
    if spec["activation"] == "sigmoid":
        scores = 1 / (1 + np.exp(-logits))
    else:
        scores = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores = scores / scores.sum(axis=1, keepdims=True)
    labels = spec["labels"]
    return {
        "object": "list",
        "data": [{"index": i, "label": labels[int(row.argmax())], "score": float(row.max())} for i, row in enumerate(scores)],
        "model": MANIFEST["name"],
        "usage": {"prompt_tokens": int(mask.sum()), "total_tokens": int(mask.sum())},
    }


@app.post("/v2/models/{name}/infer")
def infer(name: str, request: InferRequest) -> dict[str, Any]:
    feeds = {t.name: np.asarray(t.data, dtype=DTYPES[t.name]).reshape(t.shape) for t in request.inputs}
    names = [o.name for o in SESSION.get_outputs()]
    outputs = SESSION.run(names, feeds)
    return {
        "model_name": MANIFEST["name"],
        "outputs": [
            {"name": n, "shape": list(a.shape), "datatype": str(a.dtype).upper(), "data": a.ravel().tolist()}
            for n, a in zip(names, outputs, strict=True)
        ],
    }


@app.post("/v1/embeddings")
def embeddings(request: EmbeddingsRequest) -> dict[str, Any]:
    texts = [request.input] if isinstance(request.input, str) else request.input
    hidden, mask = run_text(texts)
    pooling = MANIFEST["embedding"]["pooling"]
    if pooling == "none":
        pooled = hidden
    elif pooling == "cls":
        pooled = hidden[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norm = np.linalg.norm(pooled, axis=1, keepdims=True) if MANIFEST["embedding"]["normalize"] else 1.0
    vectors = pooled / norm
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
        "model": MANIFEST["name"],
        "usage": {"prompt_tokens": int(mask.sum()), "total_tokens": int(mask.sum())},
    }


_mangum = Mangum(app, lifespan="off")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    result: dict[str, Any] = _mangum(event, context)
    return result
