"""What both readers of a SPEC take from the files beside a text model: config.json, tokenizer.json
and the tokenizer's own configs. Max tokens, pad id, labels and activation, the fusion shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layers.spec import Fusion, Overrides, SpecError

# transformers model types whose position ids start after the pad id (max tokens = positions - pad - 1).
PADDED_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xlm-roberta-xl")
# ONNX Runtime's transformer optimizer handles these encoders' attention as model_type "bert".
BERT_FUSABLE = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "mpnet")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a JSON object")
    return data


def fusion_of(config: dict[str, Any]) -> Fusion:
    """The transformer optimizer's shape from config.json (beside an ONNX file too), when it knows the type."""
    heads = int(_first_key(config, ("num_attention_heads", "n_heads", "num_heads"), 0) or 0)
    hidden = int(_first_key(config, ("hidden_size", "dim", "d_model"), 0) or 0)
    if config.get("model_type") in BERT_FUSABLE and heads and hidden:
        return Fusion("bert", heads, hidden)
    return Fusion(None)


def _first_key(config: dict[str, Any], keys: tuple[str, ...], default: Any) -> Any:
    return next((config[k] for k in keys if k in config), default)


def load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises its own exception type
        raise SpecError(f"{path} is not a tokenizer the tokenizers library can load: {exc}") from None


def token_limit(path: Path, transformer_dir: Path, tokenizer: Path, config: dict[str, Any]) -> tuple[int, str]:
    """Max tokens and where it came from: the configured limit, capped by the position embeddings."""
    limit, limit_note = _position_limit(config, config.get("model_type"))
    max_tokens, max_note = _configured_max_tokens(path, transformer_dir, tokenizer)
    if max_tokens is None or (limit is not None and max_tokens > limit):
        return (limit, limit_note) if limit is not None else (512, "default 512")
    return max_tokens, max_note


def _position_limit(config: dict[str, Any], model_type: Any) -> tuple[int | None, str]:
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or positions <= 0:
        return None, ""
    if model_type in PADDED_POSITIONS:
        offset = int(config.get("pad_token_id") or 0) + 1
        return (
            positions - offset,
            f"config.json max_position_embeddings {positions} - {offset} (positions start after the pad id)",
        )
    return positions, f"config.json max_position_embeddings {positions}"


def _configured_max_tokens(path: Path, transformer_dir: Path, tokenizer: Path) -> tuple[int | None, str]:
    for folder in dict.fromkeys((path, transformer_dir)):
        st = folder / "sentence_bert_config.json"
        if st.is_file():
            value = read_json(st).get("max_seq_length")
            if isinstance(value, int) and value > 1:
                return value, f"{st.name} max_seq_length"
    truncation = read_json(tokenizer).get("truncation") or {}
    if isinstance(truncation.get("max_length"), int) and truncation["max_length"] > 1:
        return int(truncation["max_length"]), f"{tokenizer.name} truncation"
    for folder in dict.fromkeys((path, transformer_dir, tokenizer.parent)):
        tc = folder / "tokenizer_config.json"
        if tc.is_file():
            value = read_json(tc).get("model_max_length")
            if isinstance(value, int) and 1 < value < 100_000:  # transformers writes 1e30 for "no limit"
                return value, "tokenizer_config.json model_max_length"
    return None, ""


def read_pad_id(transformer_dir: Path, tokenizer: Path, config: dict[str, Any]) -> tuple[int, str]:
    raw = read_json(tokenizer)
    padding = raw.get("padding") or {}
    if isinstance(padding.get("pad_id"), int):
        return int(padding["pad_id"]), f"{tokenizer.name} padding"
    library = load_tokenizer(tokenizer)
    tc = tokenizer.parent / "tokenizer_config.json"
    if not tc.is_file():
        tc = transformer_dir / "tokenizer_config.json"
    if tc.is_file():
        pad = read_json(tc).get("pad_token")
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str) and library.token_to_id(pad) is not None:
            return int(library.token_to_id(pad)), f"tokenizer_config.json pad_token {pad}"
    if isinstance(config.get("pad_token_id"), int):
        return int(config["pad_token_id"]), "config.json pad_token_id"
    for token in ("[PAD]", "<pad>", "<PAD>"):
        if library.token_to_id(token) is not None:
            return int(library.token_to_id(token)), f"the tokenizer's {token} token"
    return 0, "none found: 0 (masked out, so only position-sensitive models care)"


def classification_settings(config: dict[str, Any], o: Overrides, notes: list[str]) -> dict[str, Any]:
    id2label = config.get("id2label") or {}
    try:
        labels = tuple(str(v) for _, v in sorted(((int(k), v) for k, v in id2label.items())))
    except (TypeError, ValueError):
        raise SpecError("config.json id2label must map label numbers to names") from None
    num_labels = int(config.get("num_labels") or len(labels) or 2)
    if len(labels) != num_labels:
        labels = tuple(f"LABEL_{i}" for i in range(num_labels))
    if len(set(labels)) != len(labels):
        raise SpecError(f"config.json id2label names a label twice: {list(labels)}")
    problem = config.get("problem_type")
    st_activation = ((config.get("sentence_transformers") or {}).get("activation_fn") or "").rsplit(".", 1)[
        -1
    ]
    if st_activation in ("Sigmoid", "Identity", "Softmax"):
        activation = {"Sigmoid": "sigmoid", "Identity": "none", "Softmax": "softmax"}[st_activation]
        where = "config.json sentence_transformers.activation_fn"
    elif problem == "multi_label_classification":
        activation, where = "sigmoid", "problem_type multi_label_classification"
    elif problem == "regression":
        activation, where = "none", "problem_type regression"
    elif num_labels == 1:
        activation, where = "sigmoid", "one label: a cross-encoder's relevance score"
    else:
        activation, where = "softmax", f"{num_labels} labels, one per text"
    pairs = num_labels == 1 if o.pairs is None else o.pairs
    notes.append(f"labels {', '.join(labels)} (config.json id2label)")
    notes.append(f"activation {activation} ({where})")
    notes.append(
        f"pairs {pairs} ({'--pairs' if o.pairs else '--no-pairs' if o.pairs is False else 'one label: a cross-encoder' if pairs else 'more than one label'})"
    )
    if o.pooling is not None or o.normalize is not None:
        raise SpecError("--pooling and --normalize are for text-embedding models")
    return {"labels": labels, "activation": activation, "pairs": pairs}
