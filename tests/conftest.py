from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import msgspec
import pytest

from functions.inference.runtime import Runtime
from functions.inference.settings import Settings
from tests.support import tiny_models

# Models a user would bring, built once per session with `preheat build --model` (fixture names in
# tests/support/built_models.py: built_st_bert, built_roberta, built_classifier, built_cross_encoder,
# built_cnn, built_fragile, built_models).
pytest_plugins = ["tests.support.built_models"]

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).parent / "fixtures" / "events"
DEFAULT_MODEL = ROOT / "build" / "models" / "minilm"


@pytest.fixture(scope="session")
def embedding_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_models.write_embedding_model(path)
    return path


@pytest.fixture(scope="session")
def tensor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "linear"
    tiny_models.write_tensor_model(path)
    return path


@pytest.fixture
def make_runtime() -> Callable[..., Runtime]:
    def make(model_dir: Path, **overrides: Any) -> Runtime:
        settings = Settings.from_env({"PREHEAT_MODEL_DIR": str(model_dir), "PREHEAT_THREADS": "1"})
        return Runtime.load(msgspec.structs.replace(settings, **overrides))

    return make


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Import functions.inference.handler afresh (a new 'instance') with the given environment."""

    def load(model_dir: Path, **env: str) -> ModuleType:
        monkeypatch.setenv("PREHEAT_MODEL_DIR", str(model_dir))
        monkeypatch.setenv("PREHEAT_THREADS", "1")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        sys.modules.pop("functions.inference.handler", None)
        return importlib.import_module("functions.inference.handler")

    yield load
    sys.modules.pop("functions.inference.handler", None)


def event(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    data.update(changes)
    return data


def context(request_id: str = "req-0001") -> SimpleNamespace:
    return SimpleNamespace(
        aws_request_id=request_id,
        function_name="preheat-inference",
        memory_limit_in_mb=2048,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:preheat-inference:live",
        get_remaining_time_in_millis=lambda: 30_000,
    )


def emf_lines(text: str, *, kind: str = "all") -> list[dict[str, Any]]:
    """The EMF blobs among captured stdout lines; kind="invocation" keeps the per-invocation ones
    (dimension `start`), leaving out the cache's (dimension `level`) and others."""
    blobs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            if kind == "all" or "start" in blob:
                blobs.append(blob)
    return blobs


def log_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        # The per-invocation record rides in its EMF blob (functions/metrics/telemetry.py).
        if line.startswith("{") and '"message"' in line:
            out.append(json.loads(line))
    return out


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny-classifier"
    tiny_models.write_classification_model(path)
    return path


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny-reranker"
    tiny_models.write_classification_model(
        path, name="tiny-reranker", labels=("relevance",), pairs=True, activation="sigmoid"
    )
    return path
