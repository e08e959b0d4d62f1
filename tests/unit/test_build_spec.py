"""What `preheat build --model` reads from a SPEC before exporting anything, the data it gates on
(--sample, --shape, drawn tensors), weight-only int8, and how --objective picks. No torch here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.inference.manifest import TensorSpec
from layers import gate, optimize, samples, search, weight_only
from layers.quantize import QuantConfig
from layers.spec import Overrides, SpecError, read
from tests.support import tiny_models


def hf_dir(path: Path, config: dict[str, Any], *, files: dict[str, Any] | None = None) -> Path:
    """A Hugging Face directory as far as the reader looks: config, a weights file, a tokenizer."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"")
    tiny_models.tokenizer().save(str(path / "tokenizer.json"))
    for name, content in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return path


BERT = {"model_type": "bert", "architectures": ["BertModel"], "num_attention_heads": 4, "hidden_size": 32,
        "max_position_embeddings": 512, "type_vocab_size": 2, "pad_token_id": 0}  # fmt: skip


def st_files(pooling: dict[str, bool], *extra: dict[str, str]) -> dict[str, Any]:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        *extra,
    ]
    return {"modules.json": modules, "1_Pooling/config.json": pooling}


def test_sentence_transformers_layout_gives_pooling_normalization_and_fusion(tmp_path: Path) -> None:
    files = st_files(
        {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    )
    spec = read(hf_dir(tmp_path / "m", BERT, files={**files, "sentence_bert_config.json": {"max_seq_length": 200}}))
    assert (spec.kind, spec.task, spec.pooling, spec.normalize) == ("sentence-transformers", "text-embedding", "mean", True)
    assert spec.max_tokens == 200 and spec.pad_id == 0  # the tiny tokenizer pads with id 0
    assert (spec.fusion.model_type, spec.fusion.num_heads, spec.fusion.hidden_size) == ("bert", 4, 32)
    no_normalize = read(hf_dir(tmp_path / "n", BERT, files=st_files({"pooling_mode_cls_token": True})))
    assert (no_normalize.pooling, no_normalize.normalize) == ("cls", False)
    flags = read(tmp_path / "n", Overrides(pooling="mean", normalize=True))
    assert (flags.pooling, flags.normalize) == ("mean", True)
    assert "pooling mean (--pooling)" in flags.notes


def test_unsupported_sentence_transformers_modules_and_poolings_are_named(tmp_path: Path) -> None:
    dense = st_files(
        {"pooling_mode_mean_tokens": True},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    )
    with pytest.raises(SpecError, match="has a Dense module"):
        read(hf_dir(tmp_path / "dense", BERT, files=dense))
    maxed = hf_dir(tmp_path / "max", BERT, files=st_files({"pooling_mode_max_tokens": True}))
    with pytest.raises(SpecError, match="pooling max_tokens is not supported"):
        read(maxed)
    assert read(maxed, Overrides(pooling="mean")).pooling == "mean"


def test_classifiers_read_labels_activation_and_pairs_from_config(tmp_path: Path) -> None:
    base = {**BERT, "architectures": ["BertForSequenceClassification"]}
    three = read(hf_dir(tmp_path / "a", {**base, "id2label": {"0": "neg", "2": "pos", "1": "neu"}}))
    assert (three.task, three.labels, three.activation, three.pairs) == ("text-classification", ("neg", "neu", "pos"), "softmax", False)
    multi = read(hf_dir(tmp_path / "b", {**base, "id2label": {"0": "a", "1": "b"}, "problem_type": "multi_label_classification"}))
    assert multi.activation == "sigmoid"
    cross = read(hf_dir(tmp_path / "c", {**base, "num_labels": 1, "id2label": {"0": "LABEL_0"}}))
    assert (cross.activation, cross.pairs) == ("sigmoid", True)
    assert read(tmp_path / "c", Overrides(pairs=False)).pairs is False
    identity = {**base, "id2label": {"0": "score"}, "sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}}
    assert read(hf_dir(tmp_path / "d", identity)).activation == "none"
    with pytest.raises(SpecError, match="has no classification head"):
        read(hf_dir(tmp_path / "e", BERT), Overrides(task="text-classification"))


def test_roberta_positions_and_pad_id(tmp_path: Path) -> None:
    config = {"model_type": "roberta", "architectures": ["RobertaModel"], "num_attention_heads": 4, "hidden_size": 32,
              "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1}  # fmt: skip
    folder = hf_dir(tmp_path / "r", config)
    raw = json.loads((folder / "tokenizer.json").read_text())
    raw["padding"] = None  # no padding config: the pad id comes from tokenizer_config.json's pad_token
    (folder / "tokenizer.json").write_text(json.dumps(raw))
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[UNK]"}))
    spec = read(folder)
    assert spec.max_tokens == 512 and spec.pad_id == 1  # 514 - (pad 1 + 1); [UNK] is id 1 in the tiny vocab
    assert "pad id 1 (tokenizer_config.json pad_token [UNK])" in spec.notes


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: (p / "config.json").unlink(), "has no config.json"),
        (lambda p: (p / "model.safetensors").unlink(), "has no weights"),
        (lambda p: (p / "tokenizer.json").unlink(), "no tokenizer.json in"),
        (lambda p: (p / "tokenizer.json").write_text("{not json"), "not a tokenizer the tokenizers library can load"),
        (lambda p: (p / "config.json").write_text(json.dumps({**BERT, "model_type": "t5", "is_encoder_decoder": True})), "encoder-decoder"),
    ],
)
def test_broken_directories_fail_naming_what_is_missing(tmp_path: Path, change: Any, says: str) -> None:
    folder = hf_dir(tmp_path / "m", BERT)
    change(folder)
    with pytest.raises(SpecError, match=re.escape(says)):
        read(folder)


def onnx_text_model(path: Path, *, names: tuple[str, ...], output_rank: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    shape = ["batch", "sequence", 8] if output_rank == 3 else ["batch", 8]
    table = numpy_helper.from_array(np.ones((40, 8), np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", names[0]], ["tokens"])]
    if output_rank == 2:
        nodes.append(helper.make_node("ReduceMean", ["tokens", "axes"], ["out"], keepdims=0))
    else:
        nodes.append(helper.make_node("Identity", ["tokens"], ["out"]))
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    graph = helper.make_graph(nodes, "t", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)], [table, axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_onnx_files_become_text_models_with_a_tokenizer_beside_them(tmp_path: Path) -> None:
    model = onnx_text_model(tmp_path / "enc" / "model.onnx", names=("input_ids", "attention_mask"), output_rank=3)
    assert read(model).task == "tensor"  # no tokenizer beside it
    tiny_models.tokenizer().save(str(tmp_path / "enc" / "tokenizer.json"))
    spec = read(model)
    assert (spec.task, spec.output, spec.pooling, spec.kind) == ("text-embedding", "out", "mean", "onnx")
    pooled = onnx_text_model(tmp_path / "pooled" / "model.onnx", names=("input_ids",), output_rank=2)
    assert read(pooled, Overrides(tokenizer=tmp_path / "enc" / "tokenizer.json")).pooling == "none"
    odd = onnx_text_model(tmp_path / "odd" / "model.onnx", names=("input_ids", "positions"), output_rank=3)
    with pytest.raises(SpecError, match=re.escape("input 'positions' of model.onnx is not one a text model takes")):
        read(odd, Overrides(task="text-embedding", tokenizer=tmp_path / "enc" / "tokenizer.json"))


def test_shapes_by_input_or_by_dimension_name() -> None:
    inputs = [TensorSpec("image", "float32", ("batch", 3, "height", "width")), TensorSpec("ids", "int64", ("batch",))]
    assert samples.resolve_shapes(inputs, samples.parse_shapes(["image=1x3x64x48"])) == {"image": (1, 3, 64, 48), "ids": (1,)}
    assert samples.resolve_shapes(inputs, samples.parse_shapes(["height=8", "width=9"]))["image"] == (1, 3, 8, 9)
    with pytest.raises(SpecError, match=r"input 'image' axis 3 \('width'\) is dynamic"):
        samples.resolve_shapes(inputs, {"height": (8,)})
    with pytest.raises(SpecError, match="axis 1 is fixed at 3 in the graph, not 4"):
        samples.resolve_shapes(inputs, {"image": (1, 4, 8, 8)})
    for bad in ("image", "image=", "image=a,b", "=3", "image=0,3"):
        with pytest.raises(SpecError, match="--shape"):
            samples.parse_shapes([bad])


def test_integer_inputs_are_drawn_in_the_range_the_graph_accepts(tmp_path: Path) -> None:
    inputs = [
        helper.make_tensor_value_info("token", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("hot", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", 4]),
        helper.make_tensor_value_info("flag", TensorProto.INT64, ["batch"]),
    ]
    inits = [
        numpy_helper.from_array(np.zeros((37, 4), np.float32), "table"),
        numpy_helper.from_array(np.array([5], np.int64), "depth"),
        numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "values"),
    ]
    nodes = [
        helper.make_node("Cast", ["token"], ["token64"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["token64", "one"], ["token2d"]),
        helper.make_node("Gather", ["table", "token2d"], ["rows"]),
        helper.make_node("OneHot", ["hot", "depth", "values"], ["onehot"]),
        helper.make_node("Cast", ["pixels"], ["pf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["flag"], ["ff"], to=TensorProto.FLOAT),
    ]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("rows", "onehot", "pf", "ff")]
    path = tmp_path / "ints.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "ints", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)]), str(path))
    specs = [TensorSpec("token", "int64", ("batch",)), TensorSpec("hot", "int64", ("batch",)),
             TensorSpec("pixels", "uint8", ("batch", 4)), TensorSpec("flag", "int64", ("batch",))]  # fmt: skip
    bounds = samples.integer_bounds(path, specs)
    assert bounds["token"][:2] == (0, 37) and "table 'table'" in bounds["token"][2]
    assert bounds["hot"][:2] == (0, 5)
    assert bounds["pixels"][:2] == (0, 256)
    assert bounds["flag"][:2] == (0, 2) and "--sample" in bounds["flag"][2]
    split = samples.tensor_split(path, specs, None, {})
    assert len(split.gate) == len(split.calibration) == samples.DRAWN_SAMPLES
    drawn = np.concatenate([feed["token"] for feed in split.gate])
    assert drawn.min() >= 0 and drawn.max() < 37 and len(set(drawn.tolist())) > 10
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for feed in split.gate[:4]:
        session.run(None, feed)  # every drawn feed is one the graph accepts


def test_jsonl_samples_are_checked_line_by_line_and_split_in_half(tmp_path: Path) -> None:
    good = tmp_path / "texts.jsonl"
    good.write_text("".join(json.dumps(f"text number {i}") + "\n" for i in range(20)))
    split = samples.text_split(good, pairs=False)
    assert len(split.gate) == 10 and len(split.calibration) == 10
    assert set(split.gate).isdisjoint(split.calibration)
    assert "20 texts, 10 (50%) held out for the gate, 10 for calibration" in split.summary()
    for content, says in (
        ('"ok"\n{oops\n', "line 2 is not JSON"),
        ('"one"\n"two"\n', "has 2 items"),
        ("[1, 2]\n" * 10, "line 1 is a pair"),
        ('{"text": "x"}\n' * 10, 'line 1 is {"text": "x"}'),
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(content)
        with pytest.raises(SpecError, match=re.escape(says)):
            samples.read_jsonl(bad, pairs=False)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('["q", "d"]\n' * 10)
    assert samples.read_jsonl(pairs, pairs=True)[0] == ("q", "d")


def test_npz_samples_must_match_the_inputs(tmp_path: Path) -> None:
    inputs = [TensorSpec("x", "float32", ("batch", 3)), TensorSpec("k", "int64", (2,))]
    path = tmp_path / "s.npz"
    np.savez(path, x=np.zeros((10, 3)), k=np.zeros(20, np.int64))  # float64 casts; k's fixed batch of 2
    feeds = samples.read_npz(path, inputs)
    assert len(feeds) == 10 and feeds[0]["x"].dtype == np.float32 and feeds[0]["k"].shape == (2,)
    for arrays, says in (
        ({"x": np.zeros((10, 3))}, "missing k"),
        ({"x": np.zeros((10, 4)), "k": np.zeros(20, np.int64)}, "axis 1 is 4, the input's is 3"),
        ({"x": np.zeros((10, 3)), "k": np.zeros(20, np.float32)}, "'k' is float32, the input takes int64"),
        ({"x": np.zeros((10, 3)), "k": np.zeros(21, np.int64)}, "not a multiple of the input's fixed batch 2"),
    ):
        np.savez(path, **arrays)
        with pytest.raises(SpecError, match=says):
            samples.read_npz(path, inputs)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SpecError, match=re.escape("is not an .npz of arrays")):
        samples.read_npz(tmp_path / "junk.npz", inputs)


def mixed_model(path: Path, rng: np.random.Generator) -> None:
    """Conv -> flatten -> Gemm (transB) -> MatMul, plus a Gather table: every weight layout."""
    inits = {
        "conv_w": rng.normal(size=(64, 3, 3, 3)).astype(np.float32),
        "gemm_w": rng.normal(size=(32, 64 * 6 * 6)).astype(np.float32),  # transB: [out, in]
        "mm_w": rng.normal(size=(32, 64)).astype(np.float32),
        "table": rng.normal(size=(100, 64)).astype(np.float32),
        "bias": rng.normal(size=32).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["c"]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "gemm_w", "bias"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "mm_w"], ["m"]),
        helper.make_node("Gather", ["table", "ids"], ["e"]),
        helper.make_node("Add", ["m", "e"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, 8, 8]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["b"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 64])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    optimize.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_weight_only_int8_is_a_quarter_of_the_bytes_and_dequantized_at_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mixed_model(tmp_path / "fp32.onnx", rng)
    assert weight_only.apply(tmp_path / "fp32.onnx", tmp_path / "int8.onnx") == 4  # the bias is too small
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    kinds = {i.name: i.data_type for i in graph.initializer}
    assert kinds["gemm_w/int8"] == TensorProto.INT8 and "gemm_w" not in kinds
    scale = next(numpy_helper.to_array(i) for i in graph.initializer if i.name == "gemm_w/scale")
    assert scale.shape == (32, 1)  # per output row of a transB Gemm weight
    ratio = search.model_bytes(tmp_path / "int8.onnx") / search.model_bytes(tmp_path / "fp32.onnx")
    assert 0.25 < ratio < 0.30
    feeds = {"image": rng.normal(size=(2, 3, 8, 8)).astype(np.float32), "ids": np.array([3, 99])}
    from functions.inference.model import session_options

    exact = ort.InferenceSession(str(tmp_path / "fp32.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    served = ort.InferenceSession(
        str(tmp_path / "int8.onnx"), session_options(1, weight_only.LOAD_WITH), providers=["CPUExecutionProvider"]
    )
    approx = served.run(None, feeds)[0]
    assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 0.01
    unfolded = ort.InferenceSession(str(tmp_path / "int8.onnx"), session_options(1, "disabled"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(unfolded.run(None, feeds)[0], approx, rtol=1e-3, atol=1e-2)


def test_weights_with_unknown_consumers_stay_fp32(tmp_path: Path) -> None:
    weight = np.ones((64, 64), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])],
        [numpy_helper.from_array(weight, "w")],
    )
    optimize.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    assert weight_only.apply(tmp_path / "m.onnx", tmp_path / "q.onnx") == 0


def outcome(name: str, size: int, speedup: float, accuracy: float, passed: bool = True) -> search.MeasuredCandidate:
    scores = gate.EmbeddingScores(accuracy, 0.99, 0.999, 1.0, 10, 20)
    return search.MeasuredCandidate(
        config=QuantConfig(name), model_bytes=size, size_ratio=size / 100, scores=scores, batch1=scores,
        batched=scores, latency_ms=10.0 / speedup, reference_ms=10.0, kept=(),
        failures=() if passed else ("min cosine 0.9 < 0.98",), seconds=1.0, path=Path("unused"),
    )  # fmt: skip


def test_objectives_pick_among_passing_candidates_and_fp32_ships_when_none_passes() -> None:
    result = search.SearchResult(
        (
            outcome("fast", 27, 1.6, 0.997),
            outcome("small", 24, 1.1, 0.998),
            outcome("accurate", 25, 1.0, 0.9996),
            outcome("smallest-but-failing", 20, 2.0, 0.99, passed=False),
        ),
        fallback=outcome("fp32-optimized", 100, 1.05, 1.0),
    )
    assert result.choose("speed").config.name == "fast"  # type: ignore[union-attr]
    assert result.choose("size").config.name == "small"  # type: ignore[union-attr]
    assert result.choose("accuracy").config.name == "accurate"  # type: ignore[union-attr]
    assert result.shipped("size") == (result.choose("size"), False)
    nothing = search.SearchResult((outcome("x", 20, 2.0, 0.9, passed=False),), fallback=result.fallback)
    assert nothing.shipped() == (result.fallback, True)
    assert "fp32 fallback: accuracy passes" in nothing.report()
    with pytest.raises(ValueError, match="objective"):
        result.choose("cheapest")
