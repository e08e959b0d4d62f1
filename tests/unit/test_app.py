"""The FastAPI app answers exactly as the Lambda router does, and publishes a spec of its routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.inference.app import create_app
from functions.inference.protocol import HttpRequest
from functions.inference.runtime import Runtime


@pytest.fixture
def runtime(embedding_dir: Path, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(embedding_dir, max_request_bytes=2048)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


CASES = [
    ("POST", "/v1/embeddings", {"input": ["hello world", "a cat"], "model": "tiny"}),
    ("POST", "/v1/embeddings", {"input": "", "model": "tiny"}),
    ("POST", "/v1/embeddings", {"input": "x", "model": "nope"}),
    (
        "POST",
        "/v2/models/tiny/infer",
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]},
    ),
    ("POST", "/invocations", {"input": "hello"}),
    ("GET", "/v2/models/tiny", None),
    ("GET", "/v2/health/ready", None),
    ("GET", "/ping", None),
    ("GET", "/v1/models", None),
    ("GET", "/v1/embeddings", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), CASES)
def test_same_answer_as_the_lambda_router(
    client: TestClient, runtime: Runtime, method: str, path: str, payload: object
) -> None:
    raw = json.dumps(payload).encode() if payload is not None else b""
    headers = {"content-type": "application/json"} if payload is not None else {}
    via_app = client.request(method, path, content=raw, headers=headers)
    via_router = runtime.router.dispatch(HttpRequest(method, path, raw, headers))
    assert via_app.status_code == via_router.status
    assert via_app.content == via_router.body
    assert via_app.headers["content-type"] == "application/json"


def test_unknown_routes_use_the_error_shape(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_body_limit_holds_even_when_content_length_lies(client: TestClient) -> None:
    big = json.dumps({"input": "cat " * 1000, "model": "tiny"}).encode()
    assert (
        client.post("/v1/embeddings", content=big, headers={"content-type": "application/json"}).json()[
            "error"
        ]["code"]
        == "payload_too_large"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed, cut at the limit
        for _ in range(10):
            yield b" " * 1000

    response = client.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_openapi_describes_every_route_with_its_schemas(client: TestClient, runtime: Runtime) -> None:
    spec = client.get("/openapi.json").json()
    for route in runtime.router.routes:
        assert route.method.lower() in spec["paths"][route.path], route.path
    embeddings = spec["paths"]["/v1/embeddings"]["post"]
    assert embeddings["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EmbeddingsRequest"
    }
    schemas = spec["components"]["schemas"]
    assert set(schemas["EmbeddingsRequest"]["required"]) == {"input", "model"}
    assert "ErrorBody" in schemas and "InferenceRequest" in schemas
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["parameters"][0]["name"] == "name"
    assert client.get("/docs").status_code == 200
