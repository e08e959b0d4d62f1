"""Proof that the layers work: the deps layer built for this Python (pruned, stripped, bytecode
compiled) plus the model layer serve a real embeddings request in a fresh interpreter whose sys.path
holds only the task root (functions/) and the layers, with PYTHONDONTWRITEBYTECODE=1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from layers import deps_layer, model_layer, paths, probe
from layers.model_requests import EMBEDDINGS, ModelRequests, Request

# The first run builds the deps layer (pip from PyPI, bytecode, zip): minutes, not the default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TEXTS = ["Cold starts are what preheat removes.", "A second, unrelated sentence about gardening."]


@pytest.fixture(scope="module")
def proof(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[probe.ProbeResult, deps_layer.DepsLayer]]:
    if not (paths.DEFAULT_MODEL / "manifest.json").is_file():
        pytest.fail("build/models/minilm is missing: run `preheat build` (make model) first")
    # Reused across runs while pyproject's dependencies and the prune rules are unchanged.
    deps = deps_layer.build(deps_layer.local_target(), paths.DEPS_LOCAL)
    root = tmp_path_factory.mktemp("lambda")
    model = model_layer.build(paths.DEFAULT_MODEL, root / "model-layer")
    task = probe.task_root(root / "task")
    request = Request(EMBEDDINGS, {"input": TEXTS, "model": ModelRequests.of(paths.DEFAULT_MODEL).name})
    result = probe.run_probe(
        probe.local_python(), task, [deps.layer_dir / "python"], model.layer_dir / "model", request
    )
    yield result, deps


def test_a_request_is_served_from_the_layers_alone(
    proof: tuple[probe.ProbeResult, deps_layer.DepsLayer],
) -> None:
    result, _ = proof
    assert result.status == 200, result.body
    vectors = np.array([item["embedding"] for item in result.body["data"]], dtype=np.float32)
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert result.openapi_status == 200  # the FastAPI fallback (fastapi, pydantic) loads from the layer too


def test_nothing_came_from_the_build_environment(
    proof: tuple[probe.ProbeResult, deps_layer.DepsLayer],
) -> None:
    result, deps = proof
    assert result.leaks == ()
    site = str(deps.layer_dir / "python")
    venv = str(Path(sys.prefix))
    third_party = {
        name: file
        for name, file in result.modules.items()
        if name.split(".")[0] in {"numpy", "onnxruntime", "tokenizers", "msgspec", "aws_lambda_powertools"}
    }
    assert third_party, "the runtime's dependencies were not imported at all"
    assert all(file.startswith(site) for file in third_party.values()), third_party
    assert not any(file.startswith(venv) for file in result.modules.values() if "site-packages" in file)


def test_every_module_imported_from_the_layer_had_bytecode(
    proof: tuple[probe.ProbeResult, deps_layer.DepsLayer],
) -> None:
    """Lambda's layers are read-only: a module without shipped bytecode is recompiled every cold start."""
    result, deps = proof
    site = str(deps.layer_dir / "python")
    from_layer = {
        name: file for name, file in result.modules.items() if file.startswith(site) and file.endswith(".py")
    }
    assert len(from_layer) > 100
    missing = [name for name in from_layer if not Path(result.cached[name]).is_file()]
    assert missing == []
    assert all(result.cached[name].endswith(f".{result.cache_tag}.pyc") for name in from_layer)


def test_the_layer_answers_like_the_in_process_runtime(
    proof: tuple[probe.ProbeResult, deps_layer.DepsLayer], make_runtime: object
) -> None:
    from functions.inference.runtime import Runtime

    result, _ = proof
    runtime: Runtime = make_runtime(paths.DEFAULT_MODEL)  # type: ignore[operator]
    assert runtime.task.__class__.__name__ == "EmbeddingTask"
    local = runtime.plane.embedder.embed(TEXTS).values if runtime.plane.embedder else None  # type: ignore[attr-defined]
    assert local is not None
    layered = np.array([item["embedding"] for item in result.body["data"]], dtype=np.float32)
    assert np.allclose((local * layered).sum(axis=1), 1.0, atol=1e-3)


def test_the_deps_layer_was_slimmed(proof: tuple[probe.ProbeResult, deps_layer.DepsLayer]) -> None:
    _, deps = proof
    site = deps.layer_dir / "python"
    assert (site / "onnxruntime" / "capi").is_dir()
    for gone in (
        "onnxruntime/transformers",
        "onnxruntime/quantization",
        "onnxruntime/tools",
        "bin",
        "huggingface_hub",
    ):
        assert not (site / gone).exists(), gone
    assert not list(site.glob("onnxruntime/capi/libonnxruntime.so*"))
    assert not list(site.rglob("tests"))
    assert deps.sizes.zipped < deps.sizes.unzipped
