"""`preheat build --model` on the models a user would bring (tests/support/hf_models.py, built once
per session by tests/support/built_models.py through the CLI entry): what the build reads from each
model, what its gate decides and says, and that each built directory, loaded as the runtime loads it
(open_task), answers like the PyTorch model it came from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.inference.runtime import open_task
from layers import gate, textdata
from tests.support import hf_models
from tests.support.built_models import CLASSIFIER_SAMPLE, FRAGILE_SAMPLE, BuiltModel, run_cli

TEXTS = [
    "How long should I boil an egg for a runny yolk?",
    "Serverless functions start cold after being idle.",
    "A short one.",
    "The forecast shows heavy showers over the north west of England by midday, with strong winds.",
    "Provisioned concurrency keeps instances warm",
]
PAIRS = [
    ("How long should I boil an egg?", "Six minutes in boiling water gives a soft egg."),
    ("How long should I boil an egg?", "The match was decided by a penalty in extra time."),
    ("Will it rain tomorrow?", "Heavy showers are forecast by midday."),
    ("Will it rain tomorrow?", "Add lemon juice to milk as a buttermilk substitute, then wait ten minutes."),
]


def torch_outputs(built: BuiltModel, items: Sequence[Any], *, head: str) -> tuple[np.ndarray, np.ndarray]:
    """transformers' own forward on a padded batch: (last_hidden_state or logits, attention mask)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel, AutoModelForSequenceClassification

    manifest = built.fp32_manifest
    assert manifest.text is not None
    tokenizer = Tokenizer.from_file(str(built.source_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=manifest.text.max_tokens)
    encoded = tokenizer.encode_batch(list(items))
    width = max(len(e.ids) for e in encoded)
    pad = manifest.text.pad_id
    ids = torch.tensor([e.ids + [pad] * (width - len(e.ids)) for e in encoded])
    mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in encoded])
    types = torch.tensor([e.type_ids + [0] * (width - len(e.ids)) for e in encoded])
    cls = AutoModel if head == "base" else AutoModelForSequenceClassification
    model = cls.from_pretrained(str(built.source_dir), attn_implementation="eager").eval()
    kwargs = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in manifest.text.feeds.values():
        kwargs["token_type_ids"] = types
    with torch.no_grad():
        out = model(**kwargs)
    value = out.last_hidden_state if head == "base" else out.logits
    return value.numpy().astype(np.float64), mask.numpy()


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (unit(a) * unit(b)).sum(axis=1)  # type: ignore[no-any-return]


def served(model_dir: Path, method: str, items: Sequence[Any]) -> np.ndarray:
    task = open_task(model_dir)
    values: np.ndarray = getattr(task, method)(list(items)).values
    return values


def test_sentence_transformers_bert_reads_cls_pooling_and_normalize(built_st_bert: BuiltModel) -> None:
    report = built_st_bert.report
    assert "(sentence-transformers, text-embedding)" in report
    assert "pooling cls (1_Pooling/config.json)" in report and "normalize True (modules.json)" in report
    assert "max tokens 48 (sentence_bert_config.json max_seq_length)" in report
    manifest = built_st_bert.manifest
    assert manifest.embedding is not None and manifest.text is not None
    assert (manifest.embedding.pooling, manifest.embedding.normalize) == ("cls", True)
    assert manifest.embedding.dimensions == hf_models.HIDDEN
    assert manifest.text.feeds == {"ids": "input_ids", "mask": "attention_mask", "type_ids": "token_type_ids"}
    # A BERT WordPiece tokenizer of a single-text model gets the compiled tables.
    assert manifest.text.wordpiece == "tokenizer.wordpiece" and manifest.text.wordpiece in manifest.files
    assert "fallback" not in manifest.build and manifest.build["precision"].startswith("int8")
    hidden, _ = torch_outputs(built_st_bert, TEXTS, head="base")
    expected = unit(hidden[:, 0])  # CLS, then Normalize, as sentence-transformers computes it
    fp32 = served(built_st_bert.fp32_dir, "embed", TEXTS)
    slim = served(built_st_bert.model_dir, "embed", TEXTS)
    np.testing.assert_allclose(np.linalg.norm(slim, axis=1), 1.0, rtol=1e-5)
    assert cosines(fp32, expected).min() > 0.99999
    assert cosines(slim, expected).min() > gate.EmbeddingThresholds().min_cosine


def test_roberta_with_a_bpe_tokenizer_mean_pools_with_its_own_pad_id(built_roberta: BuiltModel) -> None:
    report = built_roberta.report
    assert "pooling mean (default: no sentence-transformers modules.json)" in report
    assert "tokenizer: the tokenizers library at run time (model is 'BPE', not WordPiece)" in report
    manifest = built_roberta.manifest
    assert manifest.text is not None and manifest.embedding is not None
    # One token type: RoBERTa's graph takes no token_type_ids; its pad id is 1, its limit 66 - 2.
    assert manifest.text.feeds == {"ids": "input_ids", "mask": "attention_mask"}
    assert (manifest.text.pad_id, manifest.text.max_tokens, manifest.text.wordpiece) == (1, 64, None)
    hidden, mask = torch_outputs(built_roberta, TEXTS, head="base")
    weights = mask[:, :, None]
    expected = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
    # One batch of different lengths: padded rows only match when the pad id (and so RoBERTa's
    # position ids) is the model's own.
    fp32 = served(built_roberta.fp32_dir, "embed", TEXTS)
    slim = served(built_roberta.model_dir, "embed", TEXTS)
    assert cosines(fp32, expected).min() > 0.99999
    assert cosines(slim, expected).min() > gate.EmbeddingThresholds().min_cosine


def test_classifier_labels_softmax_and_a_sample_split_in_half(built_classifier: BuiltModel) -> None:
    report = built_classifier.report
    assert "labels negative, neutral, positive (config.json id2label)" in report
    assert "activation softmax (3 labels, one per text)" in report
    held = CLASSIFIER_SAMPLE // 2
    assert f"{CLASSIFIER_SAMPLE} texts, {held} (50%) held out for the gate, {held} for calibration" in report
    manifest = built_classifier.manifest
    assert manifest.classification is not None and manifest.text is not None
    assert manifest.classification.labels == hf_models.LABELS
    assert manifest.classification.activation == "softmax" and not manifest.text.pairs
    assert "token_type_ids" not in manifest.text.feeds.values()  # DistilBERT has no token types
    assert manifest.text.wordpiece == "tokenizer.wordpiece"  # any BERT WordPiece tokenizer of single texts
    data = manifest.build["accuracy"]["data"]
    assert (data["source"], data["gate"], data["calibration"], data["held_out_share"]) == ("sample", held, held, 0.5)
    logits, _ = torch_outputs(built_classifier, TEXTS, head="sequence-classification")
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(served(built_classifier.fp32_dir, "classify", TEXTS), expected, atol=1e-4)
    slim = served(built_classifier.model_dir, "classify", TEXTS)
    assert np.abs(slim - expected).max() <= gate.ClassificationThresholds().max_score_diff
    np.testing.assert_allclose(slim.sum(axis=1), 1.0, rtol=1e-5)


def test_cross_encoder_scores_pairs_with_a_sigmoid(built_cross_encoder: BuiltModel) -> None:
    report = built_cross_encoder.report
    assert "pairs True (one label: a cross-encoder)" in report
    assert "held-out pairs from layers/data/heldout.txt" in report
    manifest = built_cross_encoder.manifest
    assert manifest.text is not None and manifest.classification is not None
    # A BERT WordPiece tokenizer with a pair template: the compiled tables encode the pairs too.
    assert manifest.text.pairs and manifest.text.wordpiece == "tokenizer.wordpiece"
    assert "texts and pairs of them checked against the library" in report
    assert manifest.classification.activation == "sigmoid" and len(manifest.classification.labels) == 1
    logits, _ = torch_outputs(built_cross_encoder, PAIRS, head="sequence-classification")
    expected = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(served(built_cross_encoder.fp32_dir, "classify", PAIRS), expected, atol=1e-5)
    slim = served(built_cross_encoder.model_dir, "classify", PAIRS)
    assert np.abs(slim - expected).max() <= gate.ClassificationThresholds().max_score_diff
    # Swapping the texts of a pair changes the token types: the score must follow the pair's order.
    swapped = served(built_cross_encoder.fp32_dir, "classify", [(b, a) for a, b in PAIRS])
    assert np.abs(swapped - expected).max() > 1e-3


def test_cnn_gates_on_inputs_drawn_from_its_shapes_and_answers_like_torch(built_cnn: BuiltModel) -> None:
    report = built_cnn.report
    assert "image float32 [1, 3, 32, 32] normal(0, 1)" in report
    assert "condition int64 [1] integers in [0, 10) (rows of table 'condition.weight')" in report
    manifest = built_cnn.manifest
    assert manifest.task == "tensor" and manifest.text is None
    assert [s.name for s in manifest.inputs] == ["image", "condition"]
    assert manifest.inputs[0].shape == ("batch", 3, "height", "width")  # served at any size
    assert manifest.build["accuracy"]["data"]["shapes"] == {"image": [1, 3, 32, 32], "condition": [1]}
    rng = np.random.default_rng(5)
    image = rng.normal(size=(4, 3, 40, 24)).astype(np.float32)  # a size the gate never saw
    condition = np.array([0, 3, 7, 9], dtype=np.int64)
    logits, label = hf_models.cnn_reference(built_cnn.source_dir, image, condition)
    feeds = {"image": image, "condition": condition}
    fp32 = open_task(built_cnn.fp32_dir).infer(feeds).outputs
    np.testing.assert_allclose(fp32["logits"], logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(fp32["label"], label)
    slim = open_task(built_cnn.model_dir).infer(feeds).outputs
    assert cosines(slim["logits"], logits).min() > gate.TensorThresholds().min_cosine
    assert slim["label"].dtype == np.int64 and slim["label"].shape == (4,)


def test_when_no_int8_candidate_passes_the_optimized_fp32_model_ships(built_fragile: BuiltModel) -> None:
    report = built_fragile.report
    assert f"--sample {built_fragile.source_dir.parent.parent / 'fragile-sample.npz'}: {FRAGILE_SAMPLE} samples" in report
    assert "no int8 candidate passed the gate" in report and "ships the optimized fp32 graph" in report
    for candidate in ("dynamic-int8", "static-qdq-int8", "weight-only-int8"):
        line = next(ln for ln in report.splitlines() if ln.startswith(candidate + " "))
        assert "FAIL: y: min cosine" in line
    manifest = built_fragile.manifest
    assert manifest.build["precision"] == "fp32" and "no int8 candidate passed" in manifest.build["fallback"]["reason"]
    assert manifest.build["quantization"]["name"] == "fp32-optimized"
    assert manifest.session.graph_optimization == "disabled"  # optimized offline, as slim models are
    x = np.random.default_rng(2).normal(size=(3, hf_models.FRAGILE_WIDTH)).astype(np.float32)
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(built_fragile.spec)).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    expected = (x * weights["mask"]) @ weights["weight"]
    got = open_task(built_fragile.model_dir).infer({"x": x}).outputs["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-2)


def test_every_built_model_records_its_gate_and_candidates(built_models: dict[str, BuiltModel]) -> None:
    for built in built_models.values():
        manifest, fp32 = built.manifest, built.fp32_manifest
        assert manifest.name == built.name and fp32.name == f"{built.name}-fp32"
        build = manifest.build
        assert build["reference"]["model_id"] == fp32.model_id
        names = [c["name"] for c in build["candidates"]]
        assert build["quantization"]["name"] in names and "fp32-optimized" in names
        chosen = next(c for c in build["candidates"] if c["name"] == build["quantization"]["name"])
        assert chosen["passed"] or "fallback" in build
        assert build["objective"] == "speed" and build["accuracy"]["thresholds"]
        # The report's table holds every candidate, with a verdict.
        for name in names:
            assert any(line.startswith(name + " ") for line in built.report.splitlines()), (built.name, name)


def test_objective_size_picks_the_smallest_passing_candidate(built_cnn: BuiltModel, tmp_path: Path) -> None:
    argv = ["build", "--model", str(built_cnn.spec), "--name", "cnn-small", "--out", str(tmp_path)]
    code, report, _ = run_cli([*argv, "--shape", "image=1,3,32,32", "--objective", "size"])
    assert code == 0, report
    from functions.inference import manifest as manifests

    build = manifests.load(tmp_path / "cnn-small").build
    passing = [c for c in build["candidates"] if c["passed"] and c["name"] != "fp32-optimized"]
    assert build["objective"] == "size"
    assert build["quantization"]["name"] == min(passing, key=lambda c: c["bytes"])["name"]
    assert "chosen by --objective size (the smallest passing candidate" in report


HOSTILE = Path("hostile")


def _no_tokenizer(root: Path) -> list[str]:
    target = hf_models.write_classifier(root / "no-tokenizer")
    (target / "tokenizer.json").unlink()
    return ["--model", str(target)]


def _corrupt_onnx(root: Path) -> list[str]:
    path = root / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    return ["--model", str(path)]


def _truncated_onnx(root: Path) -> list[str]:
    source = hf_models.write_cnn(root / "cnn")
    path = root / "truncated.onnx"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return ["--model", str(path)]


def _unknown_architecture(root: Path) -> list[str]:
    target = hf_models.write_cross_encoder(root / "unknown")
    config = (target / "config.json").read_text()
    (target / "config.json").write_text(config.replace('"model_type": "bert"', '"model_type": "frobnicator"'))
    return ["--model", str(target)]


def _pairs_for_single_texts(root: Path) -> list[str]:
    target = hf_models.write_classifier(root / "classifier")
    sample = root / "pairs.jsonl"
    sample.write_text('["a question", "an answer"]\n' * 12)
    return ["--model", str(target), "--sample", str(sample)]


def _texts_for_pairs(root: Path) -> list[str]:
    target = hf_models.write_cross_encoder(root / "cross")
    sample = root / "texts.jsonl"
    sample.write_text('"only one text"\n' * 12)
    return ["--model", str(target), "--sample", str(sample)]


def _npz_of_the_wrong_shape(root: Path) -> list[str]:
    source = hf_models.write_cnn(root / "cnn")
    sample = root / "bad.npz"
    np.savez(sample, image=np.zeros((8, 3, 16), np.float32), condition=np.zeros(8, np.int64))
    return ["--model", str(source), "--sample", str(sample)]


def _dynamic_dimension(root: Path) -> list[str]:
    return ["--model", str(hf_models.write_cnn(root / "cnn"))]


def _sequence_input(root: Path) -> list[str]:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ConcatFromSequence", ["xs"], ["y"], axis=0)],
        "seq",
        [helper.make_tensor_sequence_value_info("xs", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    path = root / "sequence.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return ["--model", str(path)]


def _classifier_without_a_head(root: Path) -> list[str]:
    return ["--model", str(hf_models.write_roberta(root / "roberta")), "--task", "text-classification"]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_no_tokenizer, "no tokenizer.json in"),
        (_corrupt_onnx, "is not a valid ONNX file"),
        (_truncated_onnx, "is not a valid ONNX file"),
        (_unknown_architecture, "model_type 'frobnicator' (architecture BertForSequenceClassification) is not an architecture the exporter"),
        (_pairs_for_single_texts, "line 1 is a pair: this model takes single texts"),
        (_texts_for_pairs, "line 1 is a single text: this model takes pairs"),
        (_npz_of_the_wrong_shape, "array 'image' has shape [8, 3, 16], the input is [batch, 3, height, width]"),
        (_dynamic_dimension, "input 'image' axis 2 ('height') is dynamic: give its size with --shape image=1,3,HEIGHT,WIDTH or --shape height=N"),
        (_sequence_input, "input 'xs' of sequence.onnx is a sequence, not a tensor"),
        (_classifier_without_a_head, "architecture RobertaModel has no classification head"),
    ],
)
def test_a_spec_that_cannot_be_served_gets_one_clear_line_and_exit_2(
    make: Any, says: str, tmp_path: Path
) -> None:
    argv = ["build", *make(tmp_path), "--out", str(tmp_path / "models")]
    code, _, errors = run_cli(argv)
    assert code == 2
    lines = errors.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("preheat build: error: "), errors
    assert says in lines[0]
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_the_preheat_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    argv = _no_tokenizer(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "build", *argv, "--out", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().startswith("preheat build: error: no tokenizer.json in")


def test_built_in_text_is_what_text_models_gate_on_without_a_sample(built_st_bert: BuiltModel) -> None:
    data = built_st_bert.manifest.build["accuracy"]["data"]
    assert data["source"] == "built-in" and data["gate"] == len(textdata.heldout())
    assert data["calibration"] == len(textdata.calibration())


@pytest.mark.parametrize("fixture", ["built_cross_encoder", "built_cnn"])
def test_bench_model_compares_slim_and_fp32_of_any_task(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import json

    built: BuiltModel = request.getfixturevalue(fixture)
    figures_file = tmp_path / "figures.json"
    argv = ["bench", "model", "--model", built.name, "--models", str(built.model_dir.parent), "--runs", "5"]
    argv += ["--loads", "1", "--threads", "1", "--png", str(tmp_path / "chart.png"), "--json", str(figures_file)]
    code, out, errors = run_cli(argv)
    assert code == 0, out + errors
    figures = json.loads(figures_file.read_text())
    assert figures["slim"]["task"] == built.manifest.task
    assert figures["ratios"]["size_ratio"] == pytest.approx(built.manifest.build["size_ratio"], rel=0.02)
    scenarios = ["batch1_short", "batch1_64", "batch8"] if built.manifest.text else ["batch1", "batch8"]
    for scenario in scenarios:
        assert figures["slim"][f"{scenario}_t1"]["runs"] == 5 and figures["fp32"][f"{scenario}_t1"]["p50_ms"] > 0
    accuracy = figures["slim"]["accuracy"]
    assert accuracy["failures"] == [] and "passes the gate" in out
    assert accuracy["data"]["source"] == ("built-in" if built.manifest.text else "drawn")
    assert (tmp_path / "chart.png").stat().st_size > 10_000


def test_an_onnx_text_model_with_its_tokenizer_and_config_beside_it(built_classifier: BuiltModel, tmp_path: Path) -> None:
    """The ONNX shape of a text model (as optimum and others export them): model.onnx + its data,
    tokenizer.json and config.json in one folder. Task, labels and fusion come from those files."""
    import shutil

    folder = tmp_path / "exported"
    folder.mkdir()
    for name in ("model.onnx", "model.onnx.data", "tokenizer.json"):
        shutil.copy2(built_classifier.fp32_dir / name, folder / name)
    shutil.copy2(built_classifier.source_dir / "config.json", folder / "config.json")
    code, report, errors = run_cli(["build", "--model", str(folder / "model.onnx"), "--out", str(tmp_path / "models")])
    assert code == 0, report + errors
    assert "preheat build: exported from" in report and "(onnx, text-classification)" in report  # named after its folder
    assert "fusions: bert, 4 heads, hidden 128" in report
    task = open_task(tmp_path / "models" / "exported")
    reference = served(built_classifier.fp32_dir, "classify", TEXTS)
    assert np.abs(task.classify(TEXTS).values - reference).max() <= gate.ClassificationThresholds().max_score_diff
    assert task.labels == hf_models.LABELS
