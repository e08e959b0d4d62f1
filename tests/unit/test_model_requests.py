"""layers/model_requests.py: for any manifest, a request per route that the real router answers with
200, and requests whose inputs differ by index (so warm benchmarks run the model every time)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.inference.protocol import HttpRequest
from functions.inference.runtime import Runtime
from layers.model_requests import CLASSIFY, EMBEDDINGS, INVOCATIONS, RERANK, ModelRequests
from tests.support import tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    tiny_models.write_embedding_model(base / "embedder", name="embedder")
    tiny_models.write_classification_model(base / "classifier", name="classifier")
    tiny_models.write_classification_model(
        base / "reranker", name="reranker", labels=("score",), pairs=True, activation="sigmoid"
    )
    tiny_models.write_tensor_model(base / "tensor", name="tensor")
    return {p.name: p for p in base.iterdir()}


ROUTES = {
    "embedder": (EMBEDDINGS, "/v2/models/embedder/infer", INVOCATIONS),
    "classifier": (CLASSIFY, "/v2/models/classifier/infer", INVOCATIONS),
    "reranker": (CLASSIFY, RERANK, "/v2/models/reranker/infer", INVOCATIONS),
    "tensor": ("/v2/models/tensor/infer", INVOCATIONS),
}


def answer(runtime: Runtime, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = runtime.router.dispatch(
        HttpRequest("POST", path, json.dumps(body).encode(), {"content-type": "application/json"})
    )
    return response.status, json.loads(response.body)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_route_of_every_task_answers_its_sample(
    name: str, models: dict[str, Path], make_runtime: Callable[..., Runtime]
) -> None:
    requests = ModelRequests.of(models[name])
    assert requests.routes == ROUTES[name] and requests.path == ROUTES[name][0]
    runtime = make_runtime(models[name])
    for path in requests.routes:
        status, body = answer(runtime, path, requests.sample(path).body)
        assert status == 200, (path, body)
        if path in (EMBEDDINGS, CLASSIFY, RERANK) or path.endswith("/infer"):
            assert body["model" if not path.endswith("/infer") else "model_name"] == name
    with pytest.raises(ValueError, match="does not serve /v1/rerank"):
        ModelRequests.of(models["classifier"]).sample(RERANK)


def test_the_answers_are_the_model_s_for_the_inputs_sent(
    models: dict[str, Path], make_runtime: Callable[..., Runtime]
) -> None:
    requests = ModelRequests.of(models["classifier"])
    sent = requests.request(5).body["input"]
    _, body = answer(make_runtime(models["classifier"]), CLASSIFY, requests.request(5).body)
    scores = {s["label"]: s["score"] for s in body["data"][0]["labels"]}
    expected = tiny_models.expected_scores(sent)
    assert np.allclose([scores[label] for label in tiny_models.LABELS], expected, atol=1e-5)
    tensor = ModelRequests.of(models["tensor"]).request(3).body["inputs"][0]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("x", "FP32", [1, 3])


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_inputs_differ_by_index_and_repeat_for_the_same_index(name: str, models: dict[str, Path]) -> None:
    requests = ModelRequests.of(models[name])
    for path in requests.routes:
        bodies = [json.dumps(requests.request(i, path).body) for i in range(200)]
        assert len(set(bodies)) == 200, path
        assert requests.request(7, path) == requests.request(7, path)
