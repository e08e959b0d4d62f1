"""What `preheat build` leaves behind: the slim model served by default and the fp32 one beside it,
both loadable by the runtime, the slim one recording its configuration and measured accuracy."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from functions.inference import manifest as manifests
from layers import gate, paths

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built() -> tuple[manifests.Manifest, manifests.Manifest]:
    for folder in (paths.DEFAULT_MODEL, paths.FP32_MODEL):
        if not (folder / manifests.MANIFEST_FILE).is_file():
            pytest.fail(f"{folder} is missing: run `preheat build` (make model) first")
    return manifests.load(paths.DEFAULT_MODEL), manifests.load(paths.FP32_MODEL)


def test_slim_model_is_optimized_offline_and_quantized(
    built: tuple[manifests.Manifest, manifests.Manifest],
) -> None:
    import onnx

    slim, fp32 = built
    assert slim.session.graph_optimization == "disabled"
    assert fp32.session.graph_optimization == "all"
    assert "model.onnx.data" in slim.files  # weights mapped from an external file, not copied
    ops = collections.Counter(
        n.op_type
        for n in onnx.load(str(paths.DEFAULT_MODEL / "model.onnx"), load_external_data=False).graph.node
    )
    assert ops["QAttention"] == 6  # fused and quantized attention in every layer
    assert ops["DynamicQuantizeMatMul"] + ops["MatMulInteger"] >= 12
    # Add + LayerNormalization, not ORT's slower fused SkipLayerNormalization (layers/optimize.py)
    assert ops["SkipLayerNormalization"] == 0
    assert ops["LayerNormalization"] == 13


def test_slim_model_is_at_most_30_percent_of_fp32(
    built: tuple[manifests.Manifest, manifests.Manifest],
) -> None:
    slim, fp32 = built

    def weights(m: manifests.Manifest) -> int:
        return sum(f.bytes for name, f in m.files.items() if name.startswith("model.onnx"))

    assert weights(slim) <= 0.30 * weights(fp32)
    assert slim.build["size_ratio"] == pytest.approx(weights(slim) / weights(fp32), rel=0.01)


def test_manifest_records_the_chosen_configuration_and_passing_accuracy(
    built: tuple[manifests.Manifest, manifests.Manifest],
) -> None:
    slim, fp32 = built
    build = slim.build
    assert build["reference"]["model_id"] == fp32.model_id
    quant = build["quantization"]
    assert quant["name"] in {c["name"] for c in build["candidates"]}
    assert quant["per_channel"] in (True, False) and "kept_nodes" in quant
    accuracy = build["accuracy"]
    limits = gate.EmbeddingThresholds()
    assert accuracy["mean_cosine"] >= limits.mean_cosine
    assert accuracy["min_cosine"] >= limits.min_cosine
    assert accuracy["spearman"] >= limits.spearman
    assert accuracy["top1"] >= limits.top1
    chosen = next(c for c in build["candidates"] if c["name"] == quant["name"])
    assert chosen["passed"] and chosen["failures"] == []
    assert build["offline_optimization"]["saved_level"] == "extended"


def test_both_models_serve_and_agree(
    built: tuple[manifests.Manifest, manifests.Manifest], make_runtime: Callable[..., Any]
) -> None:
    texts = [
        "Serverless functions start cold after being idle.",
        "A recipe for lentil soup with cumin.",
        "The match was decided by a penalty in extra time.",
        "Provisioned concurrency keeps instances warm.",
    ]
    slim = make_runtime(paths.DEFAULT_MODEL)
    fp32 = make_runtime(paths.FP32_MODEL)
    assert slim.manifest.name == "minilm" and fp32.manifest.name == "minilm-fp32"
    a = slim.plane.embedder.embed(texts).values
    b = fp32.plane.embedder.embed(texts).values
    assert a.shape == b.shape == (4, 384)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.98
    # Same ranking of which texts are related: the two serverless sentences stay each other's nearest.
    sims = a @ a.T
    np.fill_diagonal(sims, -1)
    assert sims[0].argmax() == 3
