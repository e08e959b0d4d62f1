"""Quantization building blocks on small generated graphs: row-quantized embeddings, smoothing (which
must not change the fp32 function), fake-quantized weights, and configuration checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from layers import calibrate, gate, optimize, outlier_split, per_token, quantize, search
from layers.quantize import QuantConfig


def run(model: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]  # type: ignore[no-any-return]


def embedding_model(path: Path, table: np.ndarray) -> None:
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"], name="lookup")],
        "embed",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "s", table.shape[1]])],
        [numpy_helper.from_array(table, "table")],
    )
    optimize.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def two_matmul_model(path: Path, w1: np.ndarray, w2: np.ndarray) -> None:
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
            helper.make_node("MatMul", ["h", "w2"], ["y"], name="second"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", w1.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", w2.shape[1]])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    optimize.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_embedding_rows_are_int8_with_a_scale_per_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = (rng.normal(size=(2048, 64)) * rng.uniform(0.01, 1.0, size=(2048, 1))).astype(np.float32)
    embedding_model(tmp_path / "fp32.onnx", table)
    assert quantize.quantize_embeddings(tmp_path / "fp32.onnx", tmp_path / "int8.onnx") == 1
    ids = rng.integers(0, 2048, size=(3, 7))
    exact = run(tmp_path / "fp32.onnx", {"ids": ids})
    approx = run(tmp_path / "int8.onnx", {"ids": ids})
    # Per-row scale: every element within half a step of its own row's scale.
    row_scale = np.abs(table[ids]).max(axis=-1, keepdims=True) / 127
    assert np.all(np.abs(approx - exact) <= row_scale / 2 + 1e-7)
    assert optimize.data_file(tmp_path / "int8.onnx").stat().st_size < 0.3 * table.nbytes
    graph = onnx.load(str(tmp_path / "int8.onnx"), load_external_data=False).graph
    assert [n.op_type for n in graph.node] == ["Gather", "Gather", "Cast", "Mul"]


def test_small_tables_are_left_alone(tmp_path: Path) -> None:
    embedding_model(tmp_path / "fp32.onnx", np.ones((2, 8), dtype=np.float32))  # e.g. token types
    assert quantize.quantize_embeddings(tmp_path / "fp32.onnx", tmp_path / "out.onnx") == 0


def test_smoothing_keeps_the_fp32_function_and_flattens_activations(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(16, 32)).astype(np.float32)
    w2 = rng.normal(size=(32, 8)).astype(np.float32)
    two_matmul_model(tmp_path / "model.onnx", w1, w2)
    feeds = []
    for _ in range(6):
        x = rng.normal(size=(5, 16)).astype(np.float32)
        x[:, 3] *= 40.0  # an outlier channel, as BERT's hidden states have
        feeds.append({"x": x})
    activations = calibrate.capture(tmp_path / "model.onnx", feeds)
    assert {t.node for t in activations.targets} == {"first", "second"}
    before = activations.channel_max("x")
    assert before[3] > 10 * np.median(before)
    assert calibrate.smooth(tmp_path / "model.onnx", tmp_path / "smooth.onnx", activations, alpha=0.7) == 2
    for feed in feeds:
        np.testing.assert_allclose(
            run(tmp_path / "smooth.onnx", feed), run(tmp_path / "model.onnx", feed), rtol=1e-4, atol=1e-3
        )
    scales = calibrate.smoothing_scales(before, w1, 0.7)
    after = before / scales
    assert after.max() / np.median(after) < before.max() / np.median(before) / 4


def test_sensitivity_ranks_the_node_with_outlier_inputs_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    w1 = rng.normal(size=(16, 16)).astype(np.float32) * 0.2
    w2 = rng.normal(size=(16, 16)).astype(np.float32) * 0.2
    two_matmul_model(tmp_path / "model.onnx", w1, w2)
    feeds = []
    for _ in range(8):
        x = rng.normal(size=(6, 16)).astype(np.float32)
        x[0, 5] = 300.0  # one huge value: one per-tensor scale wastes the 8 bits on it
        feeds.append({"x": x})
    activations = calibrate.capture(tmp_path / "model.onnx", feeds)
    ranking = calibrate.rank_sensitive(
        tmp_path / "model.onnx",
        activations,
        feeds,
        probe=calibrate.Probe(calibrate.output_rows(["y"])),
        alpha=None,
        reduce_range=True,
        op_types=("MatMul",),
    )
    assert next(node for node, _ in ranking) == "first"
    assert all(score >= 0 for _, score in ranking)


def test_fake_quantized_weights_use_7_bits_with_reduce_range() -> None:
    w = np.linspace(-1, 1, 256, dtype=np.float32).reshape(128, 2)
    levels = np.unique(calibrate.fake_quantized_weight(w, reduce_range=True)[:, 0]).size
    assert levels <= 128
    assert np.unique(calibrate.fake_quantized_weight(w, reduce_range=False)[:, 0]).size > levels


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "float16"},
        {"keep_as": "int4"},
        {"embeddings": "fp8"},
        {"smooth_alpha": 1.5},
        {"keep": -1},
    ],
)
def test_bad_configurations_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QuantConfig("bad", **kwargs)  # type: ignore[arg-type]


def test_offline_optimization_and_ort_format_keep_the_function(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    two_matmul_model(
        tmp_path / "model.onnx",
        rng.normal(size=(8, 8)).astype(np.float32),
        rng.normal(size=(8, 4)).astype(np.float32),
    )
    optimize.save_optimized(tmp_path / "model.onnx", tmp_path / "optimized.onnx")
    optimize.save_ort_format(tmp_path / "optimized.onnx", tmp_path / "model.ort")
    x = {"x": rng.normal(size=(3, 8)).astype(np.float32)}
    expected = run(tmp_path / "model.onnx", x)
    np.testing.assert_allclose(run(tmp_path / "optimized.onnx", x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run(tmp_path / "model.ort", x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="portable"):
        optimize.save_optimized(tmp_path / "model.onnx", tmp_path / "all.onnx", level="all")


def test_per_node_alphas_smooth_only_where_it_pays(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    w1 = rng.normal(size=(16, 16)).astype(np.float32)
    w2 = rng.normal(size=(16, 4)).astype(np.float32)
    two_matmul_model(tmp_path / "model.onnx", w1, w2)
    feeds = []
    for _ in range(8):
        x = rng.normal(size=(6, 16)).astype(np.float32)
        x[:, 2] *= 60.0  # the first MatMul's input has an outlier channel; its output mostly does not
        feeds.append({"x": x})
    activations = calibrate.capture(tmp_path / "model.onnx", feeds)
    alphas = calibrate.choose_alphas(
        tmp_path / "model.onnx", activations, grid=(0.5, 0.7, 0.85), reduce_range=True
    )
    assert "first" in alphas and alphas["first"] in (0.5, 0.7, 0.85)
    assert calibrate.smooth(tmp_path / "model.onnx", tmp_path / "s.onnx", activations, alphas) == len(alphas)
    for feed in feeds:
        np.testing.assert_allclose(
            run(tmp_path / "s.onnx", feed), run(tmp_path / "model.onnx", feed), rtol=1e-4, atol=1e-2
        )
    with pytest.raises(ValueError, match="not both"):
        QuantConfig("both", smooth_alpha=0.5, smooth_per_node=True)


def _outcome(name: str, size: int, speedup: float, passed: bool = True) -> search.MeasuredCandidate:
    scores = gate.EmbeddingScores(0.999, 0.99, 0.999, 1.0, 10, 20)
    return search.MeasuredCandidate(
        config=QuantConfig(name),
        model_bytes=size,
        size_ratio=size / 100,
        scores=scores,
        batch1=scores,
        batched=scores,
        latency_ms=10.0 / speedup,
        reference_ms=10.0,
        kept=(),
        failures=() if passed else ("min cosine 0.9 < 0.98",),
        seconds=1.0,
        path=Path("unused"),
    )


def test_search_keeps_the_fastest_passing_and_breaks_near_ties_by_size() -> None:
    result = search.SearchResult(
        (
            _outcome("fastest-but-failing", 20, 2.0, passed=False),
            _outcome("big", 29, 1.60),
            _outcome("small", 25, 1.55),  # within 5% of the fastest passing: the smaller one wins
            _outcome("slow", 21, 1.20),
        )
    )
    chosen = result.chosen
    assert chosen is not None and chosen.config.name == "small"
    assert "FAIL" in result.report() and "pass" in result.report()
    clear = search.SearchResult((_outcome("big", 29, 1.9), _outcome("small", 25, 1.5)))
    assert clear.chosen is not None and clear.chosen.config.name == "big"
    assert search.SearchResult((_outcome("x", 20, 2.0, passed=False),)).chosen is None


def ffn_model(path: Path, rng: np.random.Generator, hidden: int = 32, inner: int = 128) -> None:
    """x -> MatMul -> bias -> Gelu -> smoothing Mul -> MatMul: the shape of a BERT FFN after smoothing."""
    inits = {
        "w_up": rng.normal(size=(hidden, inner)).astype(np.float32) * 0.2,
        "b_up": rng.normal(size=inner).astype(np.float32),
        "smooth": rng.uniform(0.2, 3.0, size=inner).astype(np.float32),
        "w_down": rng.normal(size=(inner, hidden)).astype(np.float32) * 0.2,
    }
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w_up"], ["h"], name="up"),
            helper.make_node("Add", ["h", "b_up"], ["hb"], name="bias"),
            helper.make_node("Gelu", ["hb"], ["g"], name="gelu", domain="com.microsoft"),
            helper.make_node("Mul", ["g", "smooth"], ["gs"], name="down/smooth"),
            helper.make_node("MatMul", ["gs", "w_down"], ["y"], name="down"),
        ],
        "ffn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", hidden])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    optimize.save_model(helper.make_model(graph, opset_imports=opsets), path)


def outlier_tokens(
    rng: np.random.Generator, batch: int = 2, tokens: int = 24, hidden: int = 32
) -> np.ndarray:
    x = rng.normal(size=(batch, tokens, hidden)).astype(np.float32)
    x[:, 0] *= 40.0  # a [CLS]-like token far larger than the rest
    return x


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_split_reorders_channels_at_their_source_and_keeps_the_fp32_function(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ffn_model(tmp_path / "model.onnx", rng)
    feeds = [{"x": outlier_tokens(rng)} for _ in range(4)]
    halves = outlier_split.split(
        tmp_path / "model.onnx", tmp_path / "split.onnx", ["down"], channels=16, feeds=feeds
    )
    assert halves == ("down/outliers",)
    graph = onnx.load(str(tmp_path / "split.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert "Gather" not in ops and ops.count("Slice") == 2 and ops.count("MatMul") == 3
    x = {"x": outlier_tokens(rng, batch=3, tokens=7)}
    np.testing.assert_allclose(
        run(tmp_path / "split.onnx", x), run(tmp_path / "model.onnx", x), rtol=1e-4, atol=1e-4
    )
    # The fp32 half takes the 16 channels with the largest calibrated maxima.
    activations = calibrate.capture(tmp_path / "model.onnx", feeds)
    order = outlier_split.outlier_order(activations.channel_max("gs"), 16)
    largest = set(np.argsort(-activations.channel_max("gs"))[:16].tolist())
    assert set(order[:16].tolist()) == largest and sorted(order.tolist()) == list(range(128))


def test_split_quantized_stays_within_int8_error_of_fp32(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    ffn_model(tmp_path / "model.onnx", rng)
    feeds = [{"x": outlier_tokens(rng)} for _ in range(4)]
    config = QuantConfig("split", keep=1, keep_as="split-16", embeddings="fp32")
    assert config.split_channels == 16
    result = quantize.apply(
        config,
        tmp_path / "model.onnx",
        tmp_path / "q.onnx",
        kept=["down"],
        calibration_feeds=feeds,
        work=tmp_path,
    )
    assert result.kept == ("down/outliers",)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q.onnx"), load_external_data=False).graph.node]
    assert ops.count("MatMul") == 1  # the fp32 half; the rest and the up-projection are int8
    x = {"x": outlier_tokens(rng)}
    assert relative_error(run(tmp_path / "q.onnx", x), run(tmp_path / "model.onnx", x)) < 0.05


def test_cannot_split_where_channels_cannot_be_reordered(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    two_matmul_model(
        tmp_path / "model.onnx",
        rng.normal(size=(8, 8)).astype(np.float32),
        rng.normal(size=(8, 4)).astype(np.float32),
    )
    feeds = [{"x": rng.normal(size=(3, 8)).astype(np.float32)}]
    with pytest.raises(ValueError, match="cannot reorder"):  # "first"'s input is the graph input
        outlier_split.split(tmp_path / "model.onnx", tmp_path / "s.onnx", ["first"], channels=2, feeds=feeds)
    with pytest.raises(ValueError, match="0 < channels"):
        outlier_split.outlier_order(np.ones(8), 8)


def test_per_token_int8_matches_fp32_where_per_tensor_int8_does_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    ffn_model(tmp_path / "model.onnx", rng)
    per_token.apply(tmp_path / "model.onnx", tmp_path / "raw.onnx", ["down"])
    # Served models are optimized offline and loaded unoptimized: no fusion may change the result.
    optimize.save_optimized(tmp_path / "raw.onnx", tmp_path / "per_token.onnx")
    graph = onnx.load(str(tmp_path / "per_token.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert "MatMulInteger" in ops and ops.count("MatMul") == 1  # only the up-projection stays fp32
    assert "down/smooth" not in [n.name for n in graph.node]  # folded into the weight
    config = QuantConfig("per-tensor", per_channel=True, reduce_range=True)
    quantize._dynamic(tmp_path / "model.onnx", tmp_path / "per_tensor.onnx", config, exclude=["up"])
    for batch, tokens in ((1, 9), (3, 24)):
        x = {"x": outlier_tokens(rng, batch=batch, tokens=tokens)}
        exact = run(tmp_path / "model.onnx", x)
        tokenwise = run(tmp_path / "per_token.onnx", x)
        per_tensor = run(tmp_path / "per_tensor.onnx", x)
        assert tokenwise.shape == exact.shape
        assert relative_error(tokenwise, exact) < 0.02
        # The ordinary tokens: one per-tensor scale is sized for the outlier token; theirs are not.
        ordinary = (slice(None), slice(1, None))
        assert relative_error(tokenwise[ordinary], exact[ordinary]) < 0.02
        assert relative_error(per_tensor[ordinary], exact[ordinary]) > 3 * relative_error(
            tokenwise[ordinary], exact[ordinary]
        )


def test_per_token_products_are_exact_at_the_extremes(tmp_path: Path) -> None:
    """7-bit activations (0..128 after rounding) times 8-bit weights must not saturate the u8*s8
    kernels' int16 pair sums (AVX2 without VNNI): checked against integer numpy on this CPU."""
    k, n = 64, 8
    weight = np.where(np.arange(k * n).reshape(k, n) % 3 == 0, -127, 127).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["q", "w"], ["acc"])],
        "mmi",
        [helper.make_tensor_value_info("q", TensorProto.UINT8, ["r", k])],
        [helper.make_tensor_value_info("acc", TensorProto.INT32, ["r", n])],
        [numpy_helper.from_array(weight, "w")],
    )
    optimize.save_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx"
    )
    q = np.array([[128] * k, [127] * k, [0, 128] * (k // 2)], dtype=np.uint8)
    exact = q.astype(np.int64) @ weight.astype(np.int64)
    np.testing.assert_array_equal(run(tmp_path / "m.onnx", {"q": q}), exact)


def test_split_and_per_token_are_keep_as_options() -> None:
    assert QuantConfig("a", keep=1, keep_as="split-384").split_channels == 384
    assert QuantConfig("b", keep=1, keep_as="per-token").split_channels is None
    for bad in ("split-0", "split-", "split-x", "split-N", "per-channel"):
        with pytest.raises(ValueError, match="keep_as"):
            QuantConfig("bad", keep=1, keep_as=bad)
