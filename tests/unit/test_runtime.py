from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from functions.inference.errors import InputTooLong, InvalidTensor, ModelLoadError
from functions.inference.runtime import Runtime
from functions.inference.tasks.embedding import EmbeddingTask
from tests.support import tiny_models

MakeRuntime = Callable[..., Runtime]


def test_embeddings_are_mean_pooled_and_normalized(embedding_dir: Path, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(embedding_dir)
    assert isinstance(runtime.task, EmbeddingTask)
    texts = ["hello world", "the big red dog ran", "a cat", "the small blue cat sat on a mat"]
    result = runtime.task.embed(texts)
    assert result.values.shape == (4, tiny_models.DIM)
    assert result.values.dtype == np.float32
    for text, vector in zip(texts, result.values, strict=True):
        np.testing.assert_allclose(vector, tiny_models.expected_embedding(text), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(result.values, axis=1), 1.0, atol=1e-6)


def test_padding_never_changes_a_vector(embedding_dir: Path, make_runtime: MakeRuntime) -> None:
    """The shipped tokenizer pads to a fixed length; the runtime pads per batch and masks the padding."""
    runtime = make_runtime(embedding_dir, batch_size=2)
    assert isinstance(runtime.task, EmbeddingTask)
    alone = runtime.task.embed(["a cat"]).values[0]
    batched = runtime.task.embed(["the big red dog ran on the mat", "a cat", "hello"]).values[1]
    np.testing.assert_allclose(alone, batched, atol=1e-6)


def test_rows_come_back_in_request_order_across_batches(
    embedding_dir: Path, make_runtime: MakeRuntime
) -> None:
    runtime = make_runtime(embedding_dir, batch_size=2)
    assert isinstance(runtime.task, EmbeddingTask)
    texts = ["the cat sat on the mat", "dog", "a big red dog", "hello world", "blue"]
    got = runtime.task.embed(texts)
    assert got.tokens == tuple(len(t.split()) + 2 for t in texts)
    for text, vector in zip(texts, got.values, strict=True):
        np.testing.assert_allclose(vector, tiny_models.expected_embedding(text), atol=1e-6)


def test_long_inputs_are_truncated_at_max_tokens(embedding_dir: Path, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(embedding_dir)
    assert isinstance(runtime.task, EmbeddingTask)
    long_text = " ".join(["cat"] * 40)
    result = runtime.task.embed([long_text])
    assert result.tokens == (tiny_models.MAX_TOKENS,)
    np.testing.assert_allclose(result.values[0], tiny_models.expected_embedding(long_text), atol=1e-6)


def test_without_truncation_long_inputs_are_refused(embedding_dir: Path, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(embedding_dir, truncate=False)
    assert isinstance(runtime.task, EmbeddingTask)
    with pytest.raises(InputTooLong, match=r"input 1 is 42 tokens, over this model's 16"):
        runtime.task.embed(["short", " ".join(["dog"] * 40)])


def test_tensor_models_run_typed_arrays(tensor_dir: Path, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(tensor_dir)
    x = np.array([[1, 2, 3], [-1, 0, 4]], dtype=np.float32)
    out = runtime.task.infer({"x": x}).outputs
    np.testing.assert_allclose(out["y"], x @ tiny_models.W + tiny_models.B, rtol=1e-6)
    np.testing.assert_array_equal(out["label"], np.argmax(x @ tiny_models.W + tiny_models.B, axis=1))


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"x": np.zeros((2, 3), np.float64)}, "must be float32, got float64"),
        ({"x": np.zeros((2, 4), np.float32)}, "axis 1 must be 3, got 4"),
        ({"x": np.zeros((3,), np.float32)}, "must have 2 dimensions"),
        ({"z": np.zeros((1, 3), np.float32)}, "missing input"),
    ],
)
def test_tensor_models_refuse_wrong_feeds(
    tensor_dir: Path, make_runtime: MakeRuntime, feeds: dict[str, np.ndarray], message: str
) -> None:
    runtime = make_runtime(tensor_dir)
    with pytest.raises(InvalidTensor, match=message):
        runtime.task.infer(feeds)


def test_a_corrupted_model_fails_init_naming_the_file(
    embedding_dir: Path, tmp_path: Path, make_runtime: MakeRuntime
) -> None:
    """ORT may choke on the bytes first; the checksum error is the one reported."""
    broken = tmp_path / "broken"
    shutil.copytree(embedding_dir, broken)
    path = broken / "model.onnx"
    path.write_bytes(b"\x00" * path.stat().st_size)
    with pytest.raises(ModelLoadError, match=r"model\.onnx .*does not match its manifest"):
        make_runtime(broken)


def test_a_corrupted_model_fails_init_with_an_older_manifest_too(
    embedding_dir: Path, tmp_path: Path, make_runtime: MakeRuntime
) -> None:
    """Manifests without XXH3 are checked with sha256 in a thread while the session builds."""
    import json

    broken = tmp_path / "broken"
    shutil.copytree(embedding_dir, broken)
    raw = json.loads((broken / "manifest.json").read_text())
    for entry in raw["files"].values():
        del entry["xxh3"]
    (broken / "manifest.json").write_text(json.dumps(raw))
    make_runtime(broken)  # intact: it loads
    path = broken / "model.onnx"
    path.write_bytes(b"\x00" * path.stat().st_size)
    with pytest.raises(ModelLoadError, match=r"model\.onnx .*does not match its manifest: sha256"):
        make_runtime(broken)


def test_a_manifest_that_lies_about_the_graph_fails_init(
    embedding_dir: Path, tmp_path: Path, make_runtime: MakeRuntime
) -> None:
    import json

    from layers.modeldir import write_manifest  # rewrite checksums so only the signature is wrong

    lying = tmp_path / "lying"
    shutil.copytree(embedding_dir, lying)
    raw = json.loads((lying / "manifest.json").read_text())
    from functions.inference.manifest import EmbeddingSpec, TensorSpec, TextSpec

    write_manifest(
        lying,
        name=raw["name"],
        version="1",
        task="text-embedding",
        model_file="model.onnx",
        inputs=(
            TensorSpec("input_ids", "int32", ("batch", "sequence")),
            TensorSpec("attention_mask", "int64", ("batch", "sequence")),
            TensorSpec("token_type_ids", "int64", ("batch", "sequence")),
        ),
        outputs=(TensorSpec("last_hidden_state", "float32", ("batch", "sequence", tiny_models.DIM)),),
        text=TextSpec(feeds=tiny_models.FEEDS, max_tokens=16),
        embedding=EmbeddingSpec(output="last_hidden_state", dimensions=tiny_models.DIM),
    )
    with pytest.raises(ModelLoadError, match=r"input 'input_ids' as int32, but model\.onnx has int64"):
        make_runtime(lying)
