"""Models a user would bring, made at test time without any download: `transformers` configs with
random weights, saved as Hugging Face directories with tokenizers built by the `tokenizers`
library, and ONNX files exported from torch or written with onnx's helper.

- `write_st_bert`: BERT in the sentence-transformers layout with CLS pooling and Normalize;
- `write_roberta`: a RoBERTa encoder with a byte-level BPE tokenizer, as a plain HF directory;
- `write_classifier`: a 3-label DistilBERT sequence classifier (no token types);
- `write_cross_encoder`: a BERT cross-encoder (pairs in, one logit out);
- `write_cnn`: a small CNN exported from torch: an image with dynamic height and width, and an
  integer class id looked up in an embedding table; outputs logits and their argmax;
- `write_fragile`: an ONNX MLP whose weights int8 cannot hold (one huge weight per output column on
  an input that is always zero): every quantized candidate fails its gate and fp32 ships.

`python -m tests.support.hf_models DIR` writes all six (the README's "Bring your own model" examples).
Each model is tiny (2 layers, hidden 128) but its weights dominate its bytes, so int8 can bring it
under the slim size limit as it does a real model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from layers import textdata

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

HIDDEN = 128
HEADS = 4
LAYERS = 2
INTERMEDIATE = 256
VOCAB = 4096  # embedding rows; the tokenizers use the first ~2,100
POSITIONS = 64
# transformers' default 0.02 leaves a random encoder's outputs nearly the same for every text (CLS
# vectors at cosine 0.9999): 0.1 and 0.2 spread them (pairwise cosine 0.82-0.96 and 0.45-0.82), so
# a test that compares answers compares something. Larger weights are also harder on int8.
INIT = 0.2
GENTLE_INIT = 0.1
LABELS = ("negative", "neutral", "positive")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _texts() -> tuple[str, ...]:
    return textdata.heldout() + textdata.calibration()


def wordpiece_tokenizer(*, fixed_padding: int | None = None) -> Any:
    """A BERT WordPiece tokenizer whose vocabulary is the built-in texts' words plus single
    characters (and their ## continuations), so any English text tokenizes without [UNK]."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = sorted({w for t in _texts() for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))})
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    tokens = SPECIALS + chars + [f"##{c}" for c in chars] + [w for w in words if w not in chars]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    if fixed_padding is not None:  # as many shipped sentence-transformers tokenizers do
        tok.enable_padding(length=fixed_padding, pad_id=vocab["[PAD]"], pad_token="[PAD]")
    return tok


def bpe_tokenizer() -> Any:
    """A RoBERTa-style byte-level BPE tokenizer trained on the built-in texts."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_texts()), trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    return tok


def _torch() -> Any:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    return torch


def _scale_head(module: Any, factor: float) -> None:
    torch = _torch()
    with torch.no_grad():
        module.weight.mul_(factor)


def write_st_bert(target: Path) -> Path:
    """sentence-transformers layout: BertModel at the root, 1_Pooling (CLS), 2_Normalize."""
    _torch()
    from transformers import BertConfig, BertModel

    target.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
        initializer_range=GENTLE_INIT,
        type_vocab_size=2,
        pad_token_id=0,
    )
    BertModel(config).eval().save_pretrained(str(target))
    wordpiece_tokenizer(fixed_padding=POSITIONS).save(str(target / "tokenizer.json"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (target / "modules.json").write_text(json.dumps(modules, indent=2))
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": HIDDEN,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (target / "2_Normalize").mkdir(exist_ok=True)
    (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48, "do_lower_case": False}))
    return target


def write_roberta(target: Path) -> Path:
    """A plain HF directory (no sentence-transformers files): mean pooling and normalization by default."""
    _torch()
    from transformers import RobertaConfig, RobertaModel

    target.mkdir(parents=True, exist_ok=True)
    config = RobertaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS + 2,  # positions start after the pad id (1)
        initializer_range=INIT,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    RobertaModel(config, add_pooling_layer=False).eval().save_pretrained(str(target))
    bpe_tokenizer().save(str(target / "tokenizer.json"))
    (target / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "RobertaTokenizer", "pad_token": "<pad>", "model_max_length": POSITIONS})
    )
    return target


def write_classifier(target: Path) -> Path:
    """A DistilBERT sequence classifier over LABELS (softmax, one label per text)."""
    _torch()
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    target.mkdir(parents=True, exist_ok=True)
    config = DistilBertConfig(
        vocab_size=VOCAB,
        dim=HIDDEN,
        n_layers=LAYERS,
        n_heads=HEADS,
        hidden_dim=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
        initializer_range=GENTLE_INIT,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        pad_token_id=0,
    )
    model = DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(str(target))
    wordpiece_tokenizer().save(str(target / "tokenizer.json"))
    return target


def write_cross_encoder(target: Path) -> Path:
    """A BERT cross-encoder: one logit per (query, document) pair, token types telling them apart."""
    _torch()
    from transformers import BertConfig, BertForSequenceClassification

    target.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=POSITIONS,
        initializer_range=GENTLE_INIT,
        type_vocab_size=2,
        num_labels=1,
        pad_token_id=0,
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(str(target))
    wordpiece_tokenizer().save(str(target / "tokenizer.json"))
    return target


CNN_CLASSES = 10


def cnn_module() -> Any:
    torch = _torch()
    nn = torch.nn

    class TinyCNN(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1, stride=2)
            self.conv3 = nn.Conv2d(64, 128, 3, padding=1, stride=2)
            self.conv4 = nn.Conv2d(128, 128, 3, padding=1)
            self.condition = nn.Embedding(CNN_CLASSES, 128)
            self.head = nn.Linear(128, CNN_CLASSES)

        def forward(self, image: Any, condition: Any) -> tuple[Any, Any]:
            x = torch.relu(self.conv1(image))
            x = torch.relu(self.conv2(x))
            x = torch.relu(self.conv3(x))
            x = torch.relu(self.conv4(x))
            pooled = x.mean(dim=(2, 3)) + self.condition(condition)
            logits = self.head(pooled)
            return logits, logits.argmax(dim=1)

    model = TinyCNN().eval()
    _scale_head(model.head, 10.0)
    return model


def write_cnn(target: Path) -> Path:
    """model.onnx with inputs image float32 [batch, 3, height, width] and condition int64 [batch]."""
    import warnings

    torch = _torch()
    target.mkdir(parents=True, exist_ok=True)
    model = cnn_module()
    image = torch.randn(2, 3, 32, 32)
    condition = torch.tensor([1, 7])
    path = target / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (image, condition),
            str(path),
            input_names=["image", "condition"],
            output_names=["logits", "label"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "condition": {0: "batch"},
                "logits": {0: "batch"},
                "label": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    torch.save(model.state_dict(), target / "weights.pt")
    return path


def cnn_reference(target: Path, image: np.ndarray, condition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch CNN's answer, from the weights saved beside the export."""
    torch = _torch()
    model = cnn_module()
    model.load_state_dict(torch.load(target / "weights.pt"))
    with torch.no_grad():
        logits, label = model(torch.from_numpy(image), torch.from_numpy(condition))
    return logits.numpy(), label.numpy()


FRAGILE_WIDTH = 256


def write_fragile(target: Path) -> Path:
    """x [batch, 256] -> x * mask (input 0 is always zeroed) -> MatMul W [256, 256] -> y. W's row 0 is
    1000 in every column, the rest ~N(0, 1): per-channel int8 spends its 8 bits on the 1000s, rounds
    every other weight to 0, and y to nothing. fp32 is exact (the 1000s only ever meet zeros)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(FRAGILE_WIDTH, FRAGILE_WIDTH)).astype(np.float32)
    weight[0] = 1000.0
    mask = np.ones(FRAGILE_WIDTH, np.float32)
    mask[0] = 0.0
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "mask"], ["masked"], name="mask"),
            helper.make_node("MatMul", ["masked", "weight"], ["y"], name="project"),
        ],
        "fragile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FRAGILE_WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", FRAGILE_WIDTH])],
        [numpy_helper.from_array(mask, "mask"), numpy_helper.from_array(weight, "weight")],
    )
    path = target / "fragile.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def write_examples(root: Path) -> dict[str, Path]:
    """Every model above under root, as the README's examples use them: the SPEC of each."""
    return {
        "st-bert": write_st_bert(root / "st-bert"),
        "roberta": write_roberta(root / "roberta"),
        "classifier": write_classifier(root / "classifier"),
        "cross-encoder": write_cross_encoder(root / "cross-encoder"),
        "cnn": write_cnn(root / "cnn"),
        "fragile": write_fragile(root / "fragile"),
    }


if __name__ == "__main__":  # python -m tests.support.hf_models build/examples
    import sys

    for name, spec in write_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "build/examples")).items():
        print(f"{name:14} {spec}")
