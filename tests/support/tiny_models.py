"""Tiny ONNX models generated at test time, written as real model directories (with manifests).

`embedding`: a WordPiece tokenizer over a small vocabulary and a graph whose token embeddings are a
lookup table, so the expected sentence vector can be computed by hand in numpy.
`tensor`: y = x @ W + b and argmax(y), typed float32 and int64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from functions.inference.manifest import EmbeddingSpec, Manifest, SessionHints, TensorSpec, TextSpec
from layers.modeldir import write_manifest

WORDS = ["hello", "world", "the", "cat", "sat", "on", "mat", "dog", "ran", "a", "big", "small", "red", "blue"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
DIM = 8
MAX_TOKENS = 16
FEEDS = {"ids": "input_ids", "mask": "attention_mask", "type_ids": "token_type_ids"}


def vocab() -> dict[str, int]:
    return {token: i for i, token in enumerate(SPECIAL + WORDS)}


def embedding_table(seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(len(vocab()), DIM)).astype(np.float32)


def tokenizer() -> Tokenizer:
    tok = Tokenizer(WordPiece(vocab(), unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    v = vocab()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", v["[CLS]"]), ("[SEP]", v["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    # Fixed-length padding, as many shipped tokenizer.json files have: the runtime must undo it.
    tok.enable_padding(length=MAX_TOKENS, pad_id=0, pad_token="[PAD]")
    return tok


def expected_embedding(text: str, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """What the runtime must return for `text`: mean of the looked-up rows, L2-normalized."""
    tok = tokenizer()
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    ids = tok.encode(text).ids
    vec = embedding_table()[ids].mean(axis=0)
    return (vec / np.linalg.norm(vec)).astype(np.float32)


def write_embedding_model(model_dir: Path, *, name: str = "tiny", max_tokens: int = MAX_TOKENS) -> Manifest:
    model_dir.mkdir(parents=True, exist_ok=True)
    seq = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, seq)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", DIM])
    table = numpy_helper.from_array(embedding_table(), "table")
    zero = numpy_helper.from_array(np.zeros((2, DIM), np.float32), "type_table")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["tokens"]),
        helper.make_node("Gather", ["type_table", "token_type_ids"], ["types"]),
        helper.make_node("Add", ["tokens", "types"], ["summed"]),
        # attention_mask must be a real input; multiplying by it leaves non-pad rows unchanged.
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis"], ["mask3"]),
        helper.make_node("Mul", ["summed", "mask3"], ["last_hidden_state"]),
    ]
    axis = numpy_helper.from_array(np.array([-1], np.int64), "axis")
    graph = helper.make_graph(nodes, "tiny_embedding", inputs, [output], [table, zero, axis])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model_dir / "model.onnx")
    )
    tokenizer().save(str(model_dir / "tokenizer.json"))
    return write_manifest(
        model_dir,
        name=name,
        version="1",
        task="text-embedding",
        model_file="model.onnx",
        inputs=tuple(
            TensorSpec(n, "int64", ("batch", "sequence"))
            for n in ("input_ids", "attention_mask", "token_type_ids")
        ),
        outputs=(TensorSpec("last_hidden_state", "float32", ("batch", "sequence", DIM)),),
        text=TextSpec(feeds=FEEDS, tokenizer="tokenizer.json", max_tokens=max_tokens),
        embedding=EmbeddingSpec(output="last_hidden_state", dimensions=DIM),
        aliases=("tiny-alias",),
        session=SessionHints("all"),
    )


W = np.array([[1.0, -1.0], [0.5, 2.0], [-2.0, 0.25]], dtype=np.float32)
B = np.array([0.1, -0.2], dtype=np.float32)


def write_tensor_model(model_dir: Path, *, name: str = "linear") -> Manifest:
    model_dir.mkdir(parents=True, exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    k = helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "linear", [x], [y, k], [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")]
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model_dir / "model.onnx")
    )
    return write_manifest(
        model_dir,
        name=name,
        version="3",
        task="tensor",
        model_file="model.onnx",
        inputs=(TensorSpec("x", "float32", ("batch", 3)),),
        outputs=(TensorSpec("y", "float32", ("batch", 2)), TensorSpec("label", "int64", ("batch",))),
    )


LABELS = ("negative", "neutral", "positive")


def classifier_weights(labels: int, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(DIM, labels)).astype(np.float32)


def type_table(seed: int = 5) -> np.ndarray:
    """Segment embeddings: a pair model must see which text a token came from."""
    return np.random.default_rng(seed).normal(size=(2, DIM)).astype(np.float32)


def expected_logits(item: str | tuple[str, str], labels: int, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """What the classifier computes: mean over tokens of (token + segment rows), times its weights."""
    tok = tokenizer()
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    encoding = tok.encode(*item) if isinstance(item, tuple) else tok.encode(item)
    rows = embedding_table()[encoding.ids] + type_table()[encoding.type_ids]
    result: np.ndarray = rows.mean(axis=0) @ classifier_weights(labels)
    return result


def write_classification_model(
    model_dir: Path,
    *,
    name: str = "tiny-classifier",
    labels: tuple[str, ...] = LABELS,
    pairs: bool = False,
    activation: str = "softmax",
    max_tokens: int = MAX_TOKENS,
) -> Manifest:
    """A sequence classifier (or, with pairs and one label, a cross-encoder) over the tiny vocabulary."""
    from functions.inference.manifest import ClassificationSpec

    model_dir.mkdir(parents=True, exist_ok=True)
    seq = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, seq)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])
    initializers = [
        numpy_helper.from_array(embedding_table(), "table"),
        numpy_helper.from_array(type_table(), "type_table"),
        numpy_helper.from_array(classifier_weights(len(labels)), "head"),
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array([1], np.int64), "tokens"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["words"]),
        helper.make_node("Gather", ["type_table", "token_type_ids"], ["segments"]),
        helper.make_node("Add", ["words", "segments"], ["summed"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
        helper.make_node("Mul", ["summed", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "tokens"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "tokens"], ["count"], keepdims=0),
        helper.make_node("Div", ["total", "count"], ["mean"]),
        helper.make_node("MatMul", ["mean", "head"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "tiny_classifier", inputs, [output], initializers)
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model_dir / "model.onnx")
    )
    tokenizer().save(str(model_dir / "tokenizer.json"))
    return write_manifest(
        model_dir,
        name=name,
        version="1",
        task="text-classification",
        model_file="model.onnx",
        inputs=tuple(TensorSpec(n, "int64", ("batch", "sequence")) for n in FEEDS.values()),
        outputs=(TensorSpec("logits", "float32", ("batch", len(labels))),),
        text=TextSpec(feeds=FEEDS, tokenizer="tokenizer.json", max_tokens=max_tokens, pairs=pairs),
        classification=ClassificationSpec(output="logits", labels=labels, activation=activation),
        session=SessionHints("all"),
    )
