"""The floor: the same model served with nothing but ONNX Runtime, tokenizers and numpy.

No framework, no checks, no metrics: import, create the session, tokenize, run, pool. Benchmarks run it
beside preheat's handler, in the same way, so that preheat's overhead is a measured difference.
It reads the same model directory and loads it with the same session settings (threads and graph
optimization level), so the only difference left is what preheat adds.

Any task of the manifest: `embed` (text-embedding), `classify` (text-classification: texts, or
[text, text_pair] pairs), `infer` (tensor: arrays in, arrays out); `answer` takes the body a client
sends to the task's route (/v1/embeddings, /v1/classify, /v2/models/NAME/infer), decoded.
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
_TASK = _MANIFEST["task"]
_TEXT = _MANIFEST.get("text")  # text tasks
_EMBEDDING, _CLASSIFICATION = _MANIFEST.get("embedding"), _MANIFEST.get("classification")
_DTYPES = {i["name"]: i["dtype"] for i in _MANIFEST["inputs"]}
_PHASES.mark("session")
if _TEXT is not None:
    from tokenizers import Tokenizer  # text tasks only, as preheat's runtime

    _PHASES.mark("import tokenizers")
    _ROLES = {name: role for role, name in _TEXT["feeds"].items()}  # graph input -> ids | mask | type_ids
    _OUTPUT = (_EMBEDDING or _CLASSIFICATION)["output"]
    _PAIRS = _TEXT.get("pairs", False)
    TOKENIZER = Tokenizer.from_file(os.path.join(MODEL_DIR, _TEXT["tokenizer"]))
    TOKENIZER.no_padding()
    TOKENIZER.enable_truncation(max_length=_TEXT["max_tokens"])
    _PHASES.mark("tokenizer")


def _run_text(items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (and segment ids, for pairs) -> the graph's output, and the attention mask."""
    encodings = TOKENIZER.encode_batch(items)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(items), width), _TEXT["pad_id"], dtype=np.int64)
    mask = np.zeros((len(items), width), dtype=np.int64)
    types = np.zeros((len(items), width), dtype=np.int64)
    for row, enc in enumerate(encodings):
        ids[row, : len(enc.ids)] = enc.ids
        mask[row, : len(enc.ids)] = 1
        if _PAIRS:
            types[row, : len(enc.ids)] = enc.type_ids
    feeds = {"ids": ids, "mask": mask, "type_ids": types}
    named = {name: feeds[role].astype(_DTYPES[name], copy=False) for name, role in _ROLES.items()}
    return SESSION.run([_OUTPUT], named)[0], mask


def embed(texts: list[str]) -> np.ndarray:
    hidden, mask = _run_text(texts)
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


def classify(items: list[Any]) -> np.ndarray:
    """Texts, or [text, text_pair] pairs for cross-encoders -> scores [n, labels]."""
    logits, _ = _run_text([tuple(i) if isinstance(i, list) else i for i in items])
    logits = logits.reshape(len(items), -1).astype(np.float32)
    if _CLASSIFICATION["activation"] == "sigmoid":
        return 1 / (1 + np.exp(-logits))  # type: ignore[no-any-return]
    if _CLASSIFICATION["activation"] == "softmax":
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
    return logits


def infer(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return SESSION.run(None, feeds)  # type: ignore[no-any-return]


def answer(payload: dict[str, Any]) -> Any:
    """The body of a request to the task's own route, decoded -> the model's answer (arrays)."""
    if _TASK == "tensor":
        return infer(
            {t["name"]: np.asarray(t["data"], dtype=_DTYPES[t["name"]]).reshape(t["shape"]) for t in payload["inputs"]}
        )
    values = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    return embed(values) if _TASK == "text-embedding" else classify(values)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Takes a Function URL event or a bare request body; answers {"data": [[...], ...]} (a list of
    outputs for tensor models)."""
    body = event.get("body")
    payload = json.loads(body) if isinstance(body, str) else event
    result = answer(payload)
    data = [a.tolist() for a in result] if isinstance(result, list) else result.tolist()
    return {"statusCode": 200, "body": json.dumps({"data": data})}


_PHASES.emit(os.environ.get("POWERTOOLS_SERVICE_NAME", "floor"))
