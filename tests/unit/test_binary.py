"""The Open Inference Protocol's binary tensor data extension, through Router.dispatch."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.inference import binary
from functions.inference.protocol import HttpRequest, HttpResponse, Router
from functions.inference.runtime import Runtime
from tests.support import tiny_models


@pytest.fixture
def tensor_router(tensor_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(tensor_dir).router


@pytest.fixture
def embed_router(embedding_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(embedding_dir).router


def request(header: dict[str, Any], data: bytes, *, content_type: str | None = "application/octet-stream",
            length: str | None = None) -> HttpRequest:
    raw = json.dumps(header).encode()
    headers = {binary.HEADER: str(len(raw)) if length is None else length}
    if content_type is not None:
        headers["content-type"] = content_type
    return HttpRequest("POST", "/v2/models/linear/infer", raw + data, headers, request_id="r-1")


def split(response: HttpResponse) -> tuple[dict[str, Any], bytes]:
    assert response.status == 200, response.body
    size = int(response.headers[binary.HEADER])
    header: dict[str, Any] = json.loads(response.body[:size])
    return header, response.body[size:]


def strings(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


X = np.array([[1, 2, 3], [-1, 0.5, 4]], dtype=np.float32)


def test_binary_in_binary_out(tensor_router: Router) -> None:
    header = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                          "parameters": {"binary_data_size": X.nbytes}}],
              "parameters": {"binary_data_output": True}}
    response = tensor_router.dispatch(request(header, X.tobytes()))
    assert response.headers["content-type"] == "application/octet-stream"
    meta, data = split(response)
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert "data" not in outputs["y"] and outputs["y"]["parameters"]["binary_data_size"] == 16
    y = np.frombuffer(data[:16], dtype="<f4").reshape(2, 2)
    label = np.frombuffer(data[16:], dtype="<i8")
    np.testing.assert_allclose(y, X @ tiny_models.W + tiny_models.B, rtol=1e-6)
    np.testing.assert_array_equal(label, (X @ tiny_models.W + tiny_models.B).argmax(axis=1))
    assert len(data) == 16 + 16


def test_each_output_chooses_its_encoding(tensor_router: Router) -> None:
    header = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                          "parameters": {"binary_data_size": X.nbytes}}],
              "outputs": [{"name": "label", "parameters": {"binary_data": False}},
                          {"name": "y", "parameters": {"binary_data": True}}]}
    meta, data = split(tensor_router.dispatch(request(header, X.tobytes())))
    assert [o["name"] for o in meta["outputs"]] == ["label", "y"]
    assert meta["outputs"][0]["data"] == (X @ tiny_models.W + tiny_models.B).argmax(axis=1).tolist()
    assert len(data) == 16


def test_a_binary_input_with_json_outputs_is_plain_json(tensor_router: Router) -> None:
    header = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                          "parameters": {"binary_data_size": X.nbytes}}]}
    response = tensor_router.dispatch(request(header, X.tobytes(), content_type=None))
    assert response.status == 200 and response.headers["content-type"] == "application/json"
    assert binary.HEADER not in response.headers
    assert {o["name"] for o in json.loads(response.body)["outputs"]} == {"y", "label"}


def test_bytes_tensors_travel_length_prefixed(embed_router: Router) -> None:
    texts = ["hello world", "the cat sat", "naïve café"]
    header = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(strings(texts))}}],
              "parameters": {"binary_data_output": True}}
    raw = request(header, strings(texts))
    meta, data = split(embed_router.dispatch(HttpRequest("POST", "/v2/models/tiny/infer", raw.body, raw.headers)))
    vectors = np.frombuffer(data, dtype="<f4").reshape(3, tiny_models.DIM)
    assert meta["outputs"][0]["shape"] == [3, tiny_models.DIM]
    for row, text in zip(vectors[:2], texts[:2], strict=True):
        np.testing.assert_allclose(row, tiny_models.expected_embedding(text), atol=1e-6)


def test_bytes_outputs_are_length_prefixed(classifier_dir: Path, make_runtime: Callable[..., Runtime]) -> None:
    router = make_runtime(classifier_dir).router
    body = json.dumps({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a cat", "dog"]}],
                       "outputs": [{"name": "label", "parameters": {"binary_data": True}}]}).encode()
    meta, data = split(router.dispatch(HttpRequest("POST", "/v2/models/tiny-classifier/infer", body, {})))
    assert meta["outputs"][0]["datatype"] == "BYTES" and meta["outputs"][0]["parameters"]["binary_data_size"] == len(data)
    labels, offset = [], 0
    while offset < len(data):
        (n,) = struct.unpack_from("<I", data, offset)
        labels.append(data[offset + 4 : offset + 4 + n].decode())
        offset += 4 + n
    assert len(labels) == 2 and set(labels) <= set(tiny_models.LABELS)


def body_error(response: HttpResponse) -> tuple[int, str, str]:
    payload = json.loads(response.body)
    return response.status, payload["code"], payload["error"]


@pytest.mark.parametrize(
    ("size", "data", "length", "message"),
    [
        (X.nbytes, X.tobytes()[:-4], None, "only 20 are left"),
        (X.nbytes, X.tobytes() + b"\0" * 4, None, "4 bytes of binary data that no input claims"),
        (20, X.tobytes()[:20], None, "are 24 bytes"),
        (-1, X.tobytes(), None, "non-negative integer"),
        ("24", X.tobytes(), None, "non-negative integer"),
        (X.nbytes, X.tobytes(), "abc", "must be a byte count"),
        (X.nbytes, X.tobytes(), "99999", "the body is"),
        (X.nbytes, np.full(6, np.nan, np.float32).tobytes(), None, "not finite"),
    ],
)
def test_malformed_binary_requests_are_refused(
    tensor_router: Router, size: object, data: bytes, length: str | None, message: str
) -> None:
    header = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": size}}]}
    status, _, text = body_error(tensor_router.dispatch(request(header, data, length=length)))
    assert status == 400 and message in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x05\x00\x00\x00abc", "past the end"),
        (b"\x01\x00", "cut off"),
        (b"\x01\x00\x00\x00\xff", "not valid UTF-8"),
        (strings(["a", "b"]), "holds 3 elements, the binary data has 2"),
    ],
)
def test_malformed_bytes_tensors_are_refused(embed_router: Router, data: bytes, message: str) -> None:
    header = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(data)}}]}
    raw = request(header, data)
    status, code, text = body_error(embed_router.dispatch(HttpRequest("POST", "/v2/models/tiny/infer", raw.body, raw.headers)))
    assert (status, code) == (400, "invalid_tensor") and message in text


def test_binary_size_without_a_binary_part_and_data_twice(tensor_router: Router) -> None:
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32", "parameters": {"binary_data_size": 12}}
    plain = json.dumps({"inputs": [tensor]}).encode()
    response = tensor_router.dispatch(HttpRequest("POST", "/v2/models/linear/infer", plain, {}))
    assert body_error(response)[0] == 400 and "has no binary part" in body_error(response)[2]
    both = {"inputs": [{**tensor, "data": [1, 2, 3]}]}
    assert "both 'data' and" in body_error(tensor_router.dispatch(request(both, b"\0" * 12)))[2]
    neither = json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32"}]}).encode()
    assert "has no 'data'" in body_error(tensor_router.dispatch(HttpRequest("POST", "/v2/models/linear/infer", neither, {})))[2]


def test_octet_stream_is_only_for_inference(embed_router: Router) -> None:
    response = embed_router.dispatch(
        HttpRequest("POST", "/v1/embeddings", b"{}", {"content-type": "application/octet-stream"})
    )
    assert response.status == 415
