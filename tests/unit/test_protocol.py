"""Every route through Router.dispatch: answers, and every way a request can be wrong."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.inference.protocol import HttpRequest, HttpResponse, Router
from functions.inference.runtime import Runtime
from tests.support import tiny_models

JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture
def embed_router(embedding_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(embedding_dir, max_inputs=8, max_request_bytes=4096).router


@pytest.fixture
def tensor_router(tensor_dir: Path, make_runtime: Callable[..., Runtime]) -> Router:
    return make_runtime(tensor_dir).router


def post(router: Router, path: str, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return router.dispatch(
        HttpRequest("POST", path, raw, JSON_HEADERS if headers is None else headers, request_id="r-1")
    )


def get(router: Router, path: str) -> HttpResponse:
    return router.dispatch(HttpRequest("GET", path, request_id="r-1"))


def body(response: HttpResponse) -> Any:
    return json.loads(response.body)


def error(response: HttpResponse) -> tuple[int, str]:
    """(status, code) of an error in either shape: preheat's, or the Open Inference Protocol's
    {"error": "<message>", "code": ...} that /v2 routes answer; the header carries the code in both."""
    payload = body(response)
    code = payload["code"] if isinstance(payload["error"], str) else payload["error"]["code"]
    assert response.headers["x-preheat-error-code"] == code
    return response.status, code


def message(response: HttpResponse) -> str:
    payload = body(response)
    text: str = payload["error"] if isinstance(payload["error"], str) else payload["error"]["message"]
    return text


# -- answers ------------------------------------------------------------------------------------


def test_openai_embeddings_float(embed_router: Router) -> None:
    response = post(embed_router, "/v1/embeddings", {"input": ["hello world", "a cat"], "model": "tiny"})
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    payload = body(response)
    assert payload["object"] == "list" and payload["model"] == "tiny"
    assert [d["index"] for d in payload["data"]] == [0, 1]
    np.testing.assert_allclose(
        payload["data"][1]["embedding"], tiny_models.expected_embedding("a cat"), atol=1e-6
    )
    assert payload["usage"] == {"prompt_tokens": 8, "total_tokens": 8}


def test_openai_embeddings_base64_is_little_endian_float32(embed_router: Router) -> None:
    payload = body(
        post(
            embed_router,
            "/v1/embeddings",
            {"input": "hello world", "model": "tiny-alias", "encoding_format": "base64"},
        )
    )
    vector = np.frombuffer(base64.b64decode(payload["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, tiny_models.expected_embedding("hello world"), atol=1e-6)
    assert payload["model"] == "tiny-alias"


def test_models_list_names_every_alias(embed_router: Router) -> None:
    assert [m["id"] for m in body(get(embed_router, "/v1/models"))["data"]] == ["tiny", "tiny-alias"]


def test_oip_health_and_metadata(embed_router: Router) -> None:
    assert body(get(embed_router, "/v2/health/live")) == {"live": True, "ready": None}
    assert get(embed_router, "/v2/health/ready").status == 200
    assert get(embed_router, "/v2/models/tiny/ready").status == 200
    meta = body(get(embed_router, "/v2/models/tiny"))
    assert meta["platform"] == "onnxruntime_onnx" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, tiny_models.DIM]}]


def test_oip_infer_on_a_text_model(embed_router: Router) -> None:
    request = {
        "id": "q1",
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hello world", "a dog"]}],
    }
    payload = body(post(embed_router, "/v2/models/tiny/infer", request))
    assert payload["id"] == "q1" and payload["model_name"] == "tiny" and payload["model_version"] == "1"
    (out,) = payload["outputs"]
    assert out["name"] == "embedding" and out["shape"] == [2, tiny_models.DIM] and out["datatype"] == "FP32"
    np.testing.assert_allclose(
        np.array(out["data"]).reshape(2, -1)[1], tiny_models.expected_embedding("a dog"), atol=1e-6
    )


def test_oip_infer_on_a_tensor_model_accepts_flat_and_nested_data(tensor_router: Router) -> None:
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    for data in (x.ravel().tolist(), x.tolist()):
        request = {
            "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": data}],
            "outputs": [{"name": "label"}],
        }
        payload = body(post(tensor_router, "/v2/models/linear/versions/3/infer", request))
        assert payload["outputs"] == [
            {
                "name": "label",
                "shape": [2],
                "datatype": "INT64",
                "data": np.argmax(x @ tiny_models.W + tiny_models.B, axis=1).tolist(),
            }
        ]


def test_sagemaker_invocations_speaks_both_protocols(embed_router: Router, tensor_router: Router) -> None:
    openai = body(post(embed_router, "/invocations", {"input": "hello"}))
    assert openai["object"] == "list" and len(openai["data"][0]["embedding"]) == tiny_models.DIM
    oip = body(
        post(
            tensor_router,
            "/invocations",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]}]},
        )
    )
    assert {o["name"] for o in oip["outputs"]} == {"y", "label"}
    assert get(embed_router, "/ping").status == 200


def test_base_path_is_stripped(embedding_dir: Path, make_runtime: Callable[..., Runtime]) -> None:
    router = make_runtime(embedding_dir, base_path="/prod").router
    assert post(router, "/prod/v1/embeddings", {"input": "hello", "model": "tiny"}).status == 200
    assert get(router, "/prod").status == 404


# -- every way to be wrong: a 4xx with a reason, never a 500 ----------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe{}", 400, "invalid_json"),
        (b"[" * 1500 + b"]" * 1500, 400, "invalid_request"),
        (b'{"model": "tiny"}', 400, "invalid_request"),
        (b'{"input": 5, "model": "tiny"}', 400, "invalid_request"),
        (b'{"input": [], "model": "tiny"}', 400, "invalid_request"),
        (b'{"input": ["ok", ""], "model": "tiny"}', 400, "invalid_request"),
        (b'{"input": [[101, 2023]], "model": "tiny"}', 400, "unsupported_input"),
        (b'{"input": "x", "model": "tiny", "encoding_format": "hex"}', 400, "invalid_request"),
        (b'{"input": "x", "model": "tiny", "dimensions": 4}', 400, "unsupported_dimensions"),
        (b'{"input": "x", "model": "gpt-4"}', 404, "model_not_found"),
        (json.dumps({"input": ["a"] * 9, "model": "tiny"}).encode(), 400, "too_many_inputs"),
        (json.dumps({"input": "cat " * 2000, "model": "tiny"}).encode(), 413, "payload_too_large"),
        (b"", 400, "invalid_request"),
    ],
)
def test_bad_embeddings_requests(embed_router: Router, raw: bytes, status: int, code: str) -> None:
    response = post(embed_router, "/v1/embeddings", raw)
    assert error(response) == (status, code)
    detail = body(response)["error"]
    assert detail["message"] and detail["request_id"] == "r-1"


def test_a_response_over_the_limit_is_refused_with_advice(
    embedding_dir: Path, make_runtime: Callable[..., Runtime]
) -> None:
    embed_router = make_runtime(embedding_dir, max_response_bytes=1100).router
    response = post(embed_router, "/v1/embeddings", {"input": ["hello world"] * 8, "model": "tiny"})
    assert error(response) == (413, "response_too_large")
    assert "base64" in body(response)["error"]["message"]
    assert (
        post(
            embed_router,
            "/v1/embeddings",
            {"input": ["hello world"] * 8, "model": "tiny", "encoding_format": "base64"},
        ).status
        == 200
    )


def test_wrong_content_type_is_415(embed_router: Router) -> None:
    response = post(
        embed_router,
        "/v1/embeddings",
        {"input": "x", "model": "tiny"},
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert error(response) == (415, "unsupported_media_type")
    assert post(embed_router, "/v1/embeddings", {"input": "x", "model": "tiny"}, {}).status == 200
    assert (
        post(
            embed_router,
            "/v1/embeddings",
            {"input": "x", "model": "tiny"},
            {"content-type": "application/json; charset=utf-8"},
        ).status
        == 200
    )


def test_unknown_path_and_wrong_method(embed_router: Router) -> None:
    assert error(get(embed_router, "/v3/anything")) == (404, "not_found")
    response = get(embed_router, "/v1/embeddings")
    assert error(response) == (405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("tensor", "code", "message"),
    [
        (
            {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]},
            "invalid_tensor",
            "must be FP32, got FP64",
        ),
        (
            {"name": "x", "shape": [1, 3], "datatype": "FLOAT", "data": [1, 2, 3]},
            "invalid_tensor",
            "unknown datatype",
        ),
        (
            {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3]},
            "invalid_tensor",
            "holds 6 elements, 'data' has 3",
        ),
        (
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            "invalid_tensor",
            "axis 1 must be 3",
        ),
        (
            {"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
            "invalid_tensor",
            "must have 2 dimensions",
        ),
        (
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": ["1", "2", "3"]},
            "invalid_tensor",
            "only number values",
        ),
        (
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [[1, 2], [3]]},
            "invalid_tensor",
            "ragged",
        ),
        (
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 1e39]},
            "invalid_tensor",
            "not finite",
        ),
        (
            {"name": "x", "shape": [1, -3], "datatype": "FP32", "data": [1, 2, 3]},
            "invalid_tensor",
            "negative",
        ),
        (
            {"name": "q", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
            "invalid_tensor",
            "unknown input 'q'",
        ),
    ],
)
def test_bad_tensors(tensor_router: Router, tensor: dict[str, Any], code: str, message: str) -> None:
    response = post(tensor_router, "/v2/models/linear/infer", {"inputs": [tensor]})
    assert error(response) == (400, code)
    assert message in body(response)["error"]  # the Open Inference Protocol's shape on /v2


def test_bad_infer_requests(tensor_router: Router) -> None:
    x = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    assert error(post(tensor_router, "/v2/models/linear/infer", {"inputs": [x, x]})) == (
        400,
        "invalid_tensor",
    )
    assert error(post(tensor_router, "/v2/models/linear/infer", {"inputs": []})) == (400, "invalid_tensor")
    assert error(
        post(tensor_router, "/v2/models/linear/infer", {"inputs": [x], "outputs": [{"name": "zz"}]})
    ) == (400, "invalid_tensor")
    assert error(post(tensor_router, "/v2/models/other/infer", {"inputs": [x]})) == (404, "model_not_found")
    assert error(post(tensor_router, "/v2/models/linear/versions/9/infer", {"inputs": [x]})) == (
        404,
        "model_not_found",
    )
    assert error(post(tensor_router, "/v1/embeddings", {"input": "x", "model": "linear"})) == (
        400,
        "unsupported_task",
    )
    assert error(post(tensor_router, "/invocations", {"something": 1})) == (400, "invalid_request")
    deep = (
        b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}]}"
    )
    assert error(post(tensor_router, "/v2/models/linear/infer", deep)) == (400, "invalid_json")
    assert error(post(tensor_router, "/invocations", deep)) == (400, "invalid_json")


def test_an_unexpected_failure_is_a_500_with_the_request_id(
    embed_router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    import msgspec

    # Swap in a copy of the route whose handler fails, where the router looks routes up.
    for routes in embed_router._by_length.values():
        for i, route in enumerate(routes):
            if route.name == "embeddings":
                routes[i] = msgspec.structs.replace(route, call=lambda request, params: 1 / 0)
    response = post(embed_router, "/v1/embeddings", {"input": "x", "model": "tiny"})
    assert error(response) == (500, "internal_error")
    assert body(response)["error"]["request_id"] == "r-1"
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
