"""The Lambda handler serving classification, reranking and binary v2 requests from real Function
URL events: the task comes from the manifest, the adapters and the cache level need nothing else."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import context, emf_lines, event
from tests.support import tiny_models

LoadHandler = Callable[..., ModuleType]


def url_event(path: str, body: bytes | str, **headers: str) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else body.encode()
    base = event("function_url")
    base["rawPath"] = path
    base["requestContext"]["http"] = {**base["requestContext"]["http"], "path": path, "method": "POST"}
    base["headers"] = {**base["headers"], **headers}
    base["body"] = base64.b64encode(raw).decode()
    base["isBase64Encoded"] = True
    return base


def raw_body(result: dict[str, Any]) -> bytes:
    body: str = result["body"]
    return base64.b64decode(body) if result["isBase64Encoded"] else body.encode()


def test_a_classifier_behind_a_function_url(
    classifier_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(classifier_dir)
    body = json.dumps({"input": ["the cat sat"]})
    first = handler.handler(url_event("/v1/classify", body, **{"content-type": "application/json"}), context("a"))
    again = handler.handler(url_event("/v1/classify", body, **{"content-type": "application/json"}), context("b"))
    assert first["statusCode"] == again["statusCode"] == 200 and not first["isBase64Encoded"]
    label = json.loads(first["body"])["data"][0]["label"]
    assert label == tiny_models.LABELS[int(tiny_models.expected_logits("the cat sat", 3).argmax())]
    assert [r["headers"]["x-preheat-cache"] for r in (first, again)] == ["miss", "memory"]
    blobs = emf_lines(capsys.readouterr().out, kind="invocation")
    assert [(b["route"], b["start"]) for b in blobs] == [("classify", "cold"), ("classify", "warm")]


def test_a_reranker_behind_a_function_url(cross_encoder_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(cross_encoder_dir)
    body = json.dumps({"query": "the cat", "documents": ["red", "the cat sat on the mat"]})
    result = handler.handler(url_event("/v1/rerank", body, **{"content-type": "application/json"}), context())
    assert result["statusCode"] == 200
    results = json.loads(result["body"])["results"]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and {r["index"] for r in results} == {0, 1}


def test_binary_tensor_data_through_a_function_url(tensor_dir: Path, load_handler: LoadHandler) -> None:
    """What tritonclient sends: the Function URL base64-encodes it; the answer goes back base64 too."""
    handler = load_handler(tensor_dir)
    x = np.array([[1, 2, 3]], dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 12}}],
                         "parameters": {"binary_data_output": True}}).encode()
    request = url_event("/v2/models/linear/infer", header + x.tobytes(),
                        **{"inference-header-content-length": str(len(header))})
    result = handler.handler(request, context())
    assert result["statusCode"] == 200 and result["isBase64Encoded"]
    assert result["headers"]["content-type"] == "application/octet-stream"
    body = raw_body(result)
    size = int(result["headers"]["inference-header-content-length"])
    outputs = json.loads(body[:size])["outputs"]
    assert [o["name"] for o in outputs] == ["y", "label"]
    y = np.frombuffer(body[size : size + 8], dtype="<f4")
    np.testing.assert_allclose(y, (x @ tiny_models.W + tiny_models.B)[0], rtol=1e-6)
    (label,) = struct.unpack("<q", body[size + 8 :])
    assert label == int((x @ tiny_models.W + tiny_models.B).argmax())


def test_v2_errors_behind_a_function_url_take_the_protocols_shape(
    tensor_dir: Path, load_handler: LoadHandler
) -> None:
    handler = load_handler(tensor_dir)
    result = handler.handler(url_event("/v2/models/nope/infer", b'{"inputs": []}'), context())
    assert result["statusCode"] == 404 and result["headers"]["x-preheat-error-code"] == "model_not_found"
    payload = json.loads(raw_body(result))
    assert payload["code"] == "model_not_found" and "is not served here" in payload["error"]
