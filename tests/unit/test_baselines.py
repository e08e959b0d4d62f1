"""The baselines (functions/baselines: the floor and the naive function) serve every task of the
manifest, and answer as preheat's runtime does, so benchmarks against them compare like for like."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from functions.inference.protocol import HttpRequest
from functions.inference.runtime import Runtime
from layers.model_requests import ModelRequests
from tests.support import tiny_models

WRITERS: dict[str, Callable[[Path], Any]] = {
    "embedder": lambda d: tiny_models.write_embedding_model(d, name="embedder"),
    "classifier": lambda d: tiny_models.write_classification_model(d, name="classifier"),
    "reranker": lambda d: tiny_models.write_classification_model(
        d, name="reranker", labels=("score",), pairs=True, activation="sigmoid"
    ),
    "tensor": lambda d: tiny_models.write_tensor_model(d, name="tensor"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    for name, write in WRITERS.items():
        write(base / name)
    return {name: base / name for name in WRITERS}


@pytest.fixture
def baseline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, Path], ModuleType]]:
    """Import a baseline afresh (a new instance) for a model directory."""

    def load(module: str, model_dir: Path) -> ModuleType:
        monkeypatch.setenv("PREHEAT_MODEL_DIR", str(model_dir))
        monkeypatch.setenv("PREHEAT_THREADS", "1")
        sys.modules.pop(module, None)
        return importlib.import_module(module)

    yield load
    for module in ("functions.baselines.floor", "functions.baselines.naive"):
        sys.modules.pop(module, None)


def preheat_answer(runtime: Runtime, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = runtime.router.dispatch(HttpRequest("POST", path, json.dumps(body).encode(), {}))
    assert response.status == 200, response.body
    return json.loads(response.body)  # type: ignore[no-any-return]


def expected(name: str, answer: dict[str, Any]) -> np.ndarray:
    """preheat's numbers, in the layout the floor returns them."""
    if name == "embedder":
        return np.array([d["embedding"] for d in answer["data"]])
    if name == "tensor":
        return np.array(answer["outputs"][0]["data"]).reshape(answer["outputs"][0]["shape"])
    return np.array([[s["score"] for s in sorted(d["labels"], key=lambda s: s["label"])] for d in answer["data"]])


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_the_floor_answers_every_task_as_preheat_does(
    name: str,
    models: dict[str, Path],
    baseline: Callable[[str, Path], ModuleType],
    make_runtime: Callable[..., Runtime],
) -> None:
    requests = ModelRequests.of(models[name])
    request = requests.request(4)
    floor = baseline("functions.baselines.floor", models[name])
    got = floor.answer(request.body)
    mine = expected(name, preheat_answer(make_runtime(models[name]), request.path, request.body))
    if name == "tensor":
        got = got[0]  # the first output, y
    elif name != "embedder":
        labels = models_labels(models[name])
        got = got[:, np.argsort(labels)]  # preheat's labels, sorted as `expected` sorts them
    assert np.allclose(got, mine, atol=1e-5)
    # The Function URL handler answers the same request (as the twin invokes it).
    reply = floor.handler({"body": request.json().decode()}, None)
    assert reply["statusCode"] == 200 and json.loads(reply["body"])["data"]


def models_labels(model_dir: Path) -> list[str]:
    return list(json.loads((model_dir / "manifest.json").read_text())["classification"]["labels"])


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_the_naive_function_serves_every_task_on_preheat_s_route(
    name: str, models: dict[str, Path], baseline: Callable[[str, Path], ModuleType]
) -> None:
    from fastapi.testclient import TestClient

    request = ModelRequests.of(models[name]).request(2)
    naive = baseline("functions.baselines.naive", models[name])
    response = TestClient(naive.app).post(request.path, json=request.body)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("model", body.get("model_name")) == name
