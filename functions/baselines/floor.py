"""The floor: the same model served with nothing but ONNX Runtime, tokenizers and numpy.

No framework, no checks, no metrics: import, create the session, tokenize, run, pool. Benchmarks run it
beside preheat's handler, in the same way, so that preheat's overhead is a measured difference.
It reads the same model directory and loads it with the same session settings (threads and graph
optimization level), so the only difference left is what preheat adds.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()
# The same init-phases line as preheat's handler (standard library only, a few microseconds), so
# `preheat bench coldstart --phases` compares the two phase by phase.
from functions.inference.phases import InitPhases  # noqa: E402

_PHASES = InitPhases(_STARTED)
import json  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

_PHASES.mark("import numpy")
import onnxruntime as ort  # noqa: E402

_PHASES.mark("import onnxruntime")
from tokenizers import Tokenizer  # noqa: E402

_PHASES.mark("import tokenizers")
MODEL_DIR = os.environ.get("PREHEAT_MODEL_DIR", "/opt/model")
with open(os.path.join(MODEL_DIR, "manifest.json"), encoding="utf-8") as _f:
    _MANIFEST = json.load(_f)
_PHASES.mark("manifest")

_options = ort.SessionOptions()
_options.intra_op_num_threads = int(os.environ.get("PREHEAT_THREADS", "1"))
_options.inter_op_num_threads = 1
_options.graph_optimization_level = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}.get(
    _MANIFEST.get("session", {}).get("graph_optimization", "all"), ort.GraphOptimizationLevel.ORT_ENABLE_ALL
)
SESSION = ort.InferenceSession(
    os.path.join(MODEL_DIR, _MANIFEST["model_file"]), _options, providers=["CPUExecutionProvider"]
)
_TEXT, _EMBEDDING = _MANIFEST["text"], _MANIFEST["embedding"]
_ROLES = {name: role for role, name in _TEXT["feeds"].items()}  # graph input -> ids | mask | type_ids
_OUTPUT = _EMBEDDING["output"]
_PHASES.mark("session")
TOKENIZER = Tokenizer.from_file(os.path.join(MODEL_DIR, _TEXT["tokenizer"]))
TOKENIZER.no_padding()
TOKENIZER.enable_truncation(max_length=_TEXT["max_tokens"])
_PHASES.mark("tokenizer")


def embed(texts: list[str]) -> np.ndarray:
    encodings = TOKENIZER.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(texts), width), _TEXT["pad_id"], dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for row, enc in enumerate(encodings):
        ids[row, : len(enc.ids)] = enc.ids
        mask[row, : len(enc.ids)] = 1
    feeds = {"ids": ids, "mask": mask, "type_ids": np.zeros_like(ids)}
    hidden = SESSION.run([_OUTPUT], {name: feeds[role] for name, role in _ROLES.items()})[0]
    if _EMBEDDING["pooling"] == "none":
        pooled = hidden
    elif _EMBEDDING["pooling"] == "cls":
        pooled = hidden[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    if not _EMBEDDING["normalize"]:
        return pooled  # type: ignore[no-any-return]
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)  # type: ignore[no-any-return]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Takes a Function URL event or a bare {"input": ...}; answers {"data": [[...], ...]}."""
    body = event.get("body")
    payload = json.loads(body) if isinstance(body, str) else event
    texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    return {"statusCode": 200, "body": json.dumps({"data": embed(texts).tolist()})}


_PHASES.emit(os.environ.get("POWERTOOLS_SERVICE_NAME", "floor"))
