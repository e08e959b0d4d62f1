"""The naive baseline: the same model served the way a first Lambda for it is usually written.

FastAPI behind Mangum, Powertools Logger, Metrics and Tracer imported and created at module level,
the fp32 model (PREHEAT_MODEL_DIR; the benchmark points it at build/models/minilm-fp32 when that
exists), ONNX Runtime with its default session options. Nothing here is wrong, and every piece is
what the documentation shows; it is the cold start that preheat's handler is measured against.
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
TOKENIZER = Tokenizer.from_file(os.path.join(MODEL_DIR, MANIFEST["text"]["tokenizer"]))
TOKENIZER.enable_truncation(max_length=MANIFEST["text"]["max_tokens"])
TOKENIZER.enable_padding(pad_id=MANIFEST["text"]["pad_id"])
ROLES = {name: role for role, name in MANIFEST["text"]["feeds"].items()}
OUTPUT = MANIFEST["embedding"]["output"]

app = FastAPI(title="naive embeddings")


class EmbeddingsRequest(BaseModel):
    input: str | list[str]
    model: str | None = None


@app.post("/v1/embeddings")
def embeddings(request: EmbeddingsRequest) -> dict[str, Any]:
    texts = [request.input] if isinstance(request.input, str) else request.input
    encodings = TOKENIZER.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feeds = {"ids": ids, "mask": mask, "type_ids": np.zeros_like(ids)}
    hidden = SESSION.run([OUTPUT], {name: feeds[role] for name, role in ROLES.items()})[0]
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
