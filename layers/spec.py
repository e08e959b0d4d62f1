"""What `preheat build --model SPEC` is building: read from the model's own files before anything is
exported, so a SPEC that cannot be served fails in a second with one line saying why.

SPEC is a Hugging Face model directory (config.json + weights + tokenizer.json; the
sentence-transformers layout adds modules.json, 1_Pooling/config.json and 2_Normalize) or an ONNX
file (external data beside it allowed; a tokenizer.json and config.json beside it are read too). The
task, pooling, normalization, labels, pairs and the graph's names come from those files; every
`Overrides` field that is set wins. `ModelSpec.notes` says where each setting came from, for the
build report. Build time only: reads JSON and the ONNX graph, imports neither torch nor transformers'
models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.inference.manifest import POOLINGS, TASKS, TEXT_TASKS, TensorSpec

WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Graph input names -> the role the text layer fills (functions/inference/tasks/text.py).
ROLE_NAMES = {
    "input_ids": "ids",
    "ids": "ids",
    "attention_mask": "mask",
    "input_mask": "mask",
    "mask": "mask",
    "token_type_ids": "type_ids",
    "segment_ids": "type_ids",
    "type_ids": "type_ids",
}
# transformers model types whose position ids start after the pad id (max tokens = positions - pad - 1).
PADDED_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xlm-roberta-xl")
# ONNX Runtime's transformer optimizer handles these encoders' attention as model_type "bert".
BERT_FUSABLE = ("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "mpnet")
_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
}  # fmt: skip


class SpecError(Exception):
    """A SPEC that cannot be served. The message is one line naming what is missing or unsupported."""


@dataclass(frozen=True)
class Overrides:
    """`preheat build` flags; None means "read it from the model"."""

    task: str | None = None
    tokenizer: Path | None = None
    pooling: str | None = None
    normalize: bool | None = None
    pairs: bool | None = None


@dataclass(frozen=True)
class Fusion:
    """The transformer optimizer's view of the encoder, from config.json; model_type None: no fusions."""

    model_type: str | None
    num_heads: int = 0
    hidden_size: int = 0


@dataclass(frozen=True)
class ModelSpec:
    path: Path  # the SPEC as given
    kind: str  # "huggingface", "sentence-transformers" or "onnx"
    task: str
    model_dir: Path | None = None  # the transformers directory (HF kinds)
    onnx_file: Path | None = None  # the ONNX kind
    config: dict[str, Any] = field(default_factory=dict)
    architecture: str | None = None
    model_type: str | None = None
    fusion: Fusion = field(default_factory=lambda: Fusion(None))
    tokenizer: Path | None = None  # text tasks
    max_tokens: int = 512
    pad_id: int = 0
    pooling: str = "mean"  # text-embedding
    normalize: bool = True
    output: str | None = None  # the graph output the task reads (ONNX kind; HF exports name their own)
    labels: tuple[str, ...] = ()  # text-classification
    activation: str = "softmax"
    pairs: bool = False
    inputs: tuple[TensorSpec, ...] = ()  # the ONNX kind's graph signature
    outputs: tuple[TensorSpec, ...] = ()
    notes: tuple[str, ...] = ()  # where each setting came from

    @property
    def is_text(self) -> bool:
        return self.task in TEXT_TASKS


def read(path: Path, overrides: Overrides = Overrides()) -> ModelSpec:
    if overrides.task is not None and overrides.task not in TASKS:
        raise SpecError(f"--task {overrides.task!r} is not one of {', '.join(TASKS)}")
    if overrides.pooling is not None and overrides.pooling not in POOLINGS:
        raise SpecError(f"--pooling {overrides.pooling!r} is not one of {', '.join(POOLINGS)}")
    if overrides.tokenizer is not None and not overrides.tokenizer.is_file():
        raise SpecError(f"--tokenizer {overrides.tokenizer} does not exist")
    if not path.exists():
        raise SpecError(
            f"--model {path} does not exist: give a Hugging Face model directory or an .onnx file"
        )
    if path.is_dir():
        return _huggingface(path, overrides)
    return _onnx(path, overrides)


# --- Hugging Face directories ---------------------------------------------------------------------


def _huggingface(path: Path, o: Overrides) -> ModelSpec:
    notes: list[str] = []
    modules = _modules(path)
    transformer_dir = path
    if modules is not None:
        sub = next((m.get("path", "") for m in modules if m.get("type", "").endswith(".Transformer")), None)
        if sub is None:
            raise SpecError(f"{path / 'modules.json'} has no sentence_transformers Transformer module")
        transformer_dir = path / sub if sub else path
    config_file = transformer_dir / "config.json"
    if not config_file.is_file():
        hint = (
            " (or an .onnx file)"
            if not any(path.glob("*.onnx"))
            else f" (an .onnx file is inside: pass it, e.g. {next(path.glob('*.onnx'))})"
        )
        raise SpecError(
            f"{path} has no config.json: give a Hugging Face model directory (config.json, model.safetensors "
            f"or pytorch_model.bin, tokenizer.json){hint}"
        )
    config = _json(config_file)
    if not any((transformer_dir / w).is_file() for w in WEIGHTS):
        raise SpecError(f"{transformer_dir} has no weights: it needs one of {', '.join(WEIGHTS)}")
    architecture = (config.get("architectures") or [None])[0]
    model_type = config.get("model_type")
    _check_architecture(config_file, model_type, architecture, config)

    task = o.task
    if task is None:
        task = (
            "text-classification"
            if architecture and architecture.endswith("ForSequenceClassification")
            else "text-embedding"
        )
        notes.append(f"task {task} (from config.json architectures: {architecture or 'none'})")
    else:
        notes.append(f"task {task} (--task)")
    if task == "tensor":
        raise SpecError(
            "--task tensor takes an ONNX file: a Hugging Face directory is exported as a text model "
            "(text-embedding or text-classification)"
        )
    if task == "text-classification":
        _check_classifier(model_type, architecture, config_file)

    tokenizer = _tokenizer(path, transformer_dir, o, task)
    limit, limit_note = _position_limit(config, model_type)
    max_tokens, max_note = _max_tokens(path, transformer_dir, tokenizer)
    if max_tokens is None or (limit is not None and max_tokens > limit):
        max_tokens, max_note = (limit, limit_note) if limit is not None else (512, "default 512")
    notes.append(f"max tokens {max_tokens} ({max_note})")
    pad_id, pad_note = _pad_id(transformer_dir, tokenizer, config)
    notes.append(f"pad id {pad_id} ({pad_note})")

    fields: dict[str, Any] = {}
    if task == "text-embedding":
        fields.update(_embedding_settings(path, modules, o, notes))
    else:
        fields.update(_classification_settings(config, o, notes))
    fusion = _fusion(config)
    return ModelSpec(
        path=path,
        kind="sentence-transformers" if modules is not None else "huggingface",
        task=task,
        model_dir=transformer_dir,
        config=config,
        architecture=architecture,
        model_type=model_type,
        fusion=fusion,
        tokenizer=tokenizer,
        max_tokens=max_tokens,
        pad_id=pad_id,
        notes=tuple(notes),
        **fields,
    )


def _fusion(config: dict[str, Any]) -> Fusion:
    """The transformer optimizer's shape from config.json (beside an ONNX file too), when it knows the type."""
    heads = int(getattr_any(config, ("num_attention_heads", "n_heads", "num_heads"), 0) or 0)
    hidden = int(getattr_any(config, ("hidden_size", "dim", "d_model"), 0) or 0)
    if config.get("model_type") in BERT_FUSABLE and heads and hidden:
        return Fusion("bert", heads, hidden)
    return Fusion(None)


def getattr_any(config: dict[str, Any], keys: tuple[str, ...], default: Any) -> Any:
    return next((config[k] for k in keys if k in config), default)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path} must hold a JSON object")
    return data


def _modules(path: Path) -> list[dict[str, Any]] | None:
    file = path / "modules.json"
    if not file.is_file():
        return None
    try:
        modules = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise SpecError(f"{file} must be a list of modules")
    return sorted(modules, key=lambda m: int(m.get("idx", 0)))


def _check_architecture(
    config_file: Path, model_type: Any, architecture: str | None, config: dict[str, Any]
) -> None:
    from transformers.models.auto import configuration_auto

    if not isinstance(model_type, str) or not model_type:
        raise SpecError(f"{config_file} has no model_type: the exporter needs it to know the architecture")
    known = getattr(configuration_auto, "CONFIG_MAPPING_NAMES")  # noqa: B009 (not re-exported for mypy)
    if model_type not in known:
        raise SpecError(
            f"{config_file}: model_type {model_type!r} (architecture {architecture or 'none'}) is not an "
            "architecture the exporter (transformers) knows; export it to ONNX yourself and pass the .onnx file"
        )
    if config.get("is_encoder_decoder"):
        raise SpecError(
            f"{config_file}: {model_type} is an encoder-decoder model; preheat exports encoders "
            "(BERT, RoBERTa, XLM-R, MPNet, DistilBERT and the like)"
        )


def _check_classifier(model_type: Any, architecture: str | None, config_file: Path) -> None:
    from transformers.models.auto import modeling_auto

    if model_type not in modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        raise SpecError(
            f"{config_file}: transformers has no sequence classifier for model_type {model_type!r}"
        )
    if not (architecture or "").endswith("ForSequenceClassification"):
        raise SpecError(
            f"{config_file}: architecture {architecture or 'none'} has no classification head, so "
            "text-classification would serve untrained weights; use --task text-embedding"
        )


def _tokenizer(path: Path, transformer_dir: Path, o: Overrides, task: str) -> Path:
    candidates = (
        [o.tokenizer]
        if o.tokenizer is not None
        else [path / "tokenizer.json", transformer_dir / "tokenizer.json"]
    )
    found = next((c for c in candidates if c is not None and c.is_file()), None)
    if found is None:
        raise SpecError(
            f"no tokenizer.json in {path}: a {task} model needs one (give --tokenizer PATH, or write it with "
            "transformers: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR))"
        )
    _load_tokenizer(found)
    return found


def _load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises its own exception type
        raise SpecError(f"{path} is not a tokenizer the tokenizers library can load: {exc}") from None


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


def _max_tokens(path: Path, transformer_dir: Path, tokenizer: Path) -> tuple[int | None, str]:
    for folder in dict.fromkeys((path, transformer_dir)):
        st = folder / "sentence_bert_config.json"
        if st.is_file():
            value = _json(st).get("max_seq_length")
            if isinstance(value, int) and value > 1:
                return value, f"{st.name} max_seq_length"
    truncation = _json(tokenizer).get("truncation") or {}
    if isinstance(truncation.get("max_length"), int) and truncation["max_length"] > 1:
        return int(truncation["max_length"]), f"{tokenizer.name} truncation"
    for folder in dict.fromkeys((path, transformer_dir, tokenizer.parent)):
        tc = folder / "tokenizer_config.json"
        if tc.is_file():
            value = _json(tc).get("model_max_length")
            if isinstance(value, int) and 1 < value < 100_000:  # transformers writes 1e30 for "no limit"
                return value, "tokenizer_config.json model_max_length"
    return None, ""


def _pad_id(transformer_dir: Path, tokenizer: Path, config: dict[str, Any]) -> tuple[int, str]:
    raw = _json(tokenizer)
    padding = raw.get("padding") or {}
    if isinstance(padding.get("pad_id"), int):
        return int(padding["pad_id"]), f"{tokenizer.name} padding"
    library = _load_tokenizer(tokenizer)
    tc = tokenizer.parent / "tokenizer_config.json"
    if not tc.is_file():
        tc = transformer_dir / "tokenizer_config.json"
    if tc.is_file():
        pad = _json(tc).get("pad_token")
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


def _embedding_settings(
    path: Path, modules: list[dict[str, Any]] | None, o: Overrides, notes: list[str]
) -> dict[str, Any]:
    pooling, normalize = "mean", True
    where = "default: no sentence-transformers modules.json"
    if modules is not None:
        where = "modules.json"
        normalize = False
        for module in modules:
            kind = module.get("type", "").rsplit(".", 1)[-1]
            folder = path / module.get("path", "")
            if kind == "Transformer":
                continue
            if kind == "Pooling":
                pooling = _st_pooling(folder / "config.json", o.pooling)
                where = f"{module.get('path')}/config.json"
            elif kind == "Normalize":
                normalize = True
            else:
                raise SpecError(
                    f"{path / 'modules.json'} has a {kind} module ({module.get('path')}): preheat serves "
                    "Transformer -> Pooling -> Normalize; export the model to ONNX with that module inside "
                    "and build the .onnx file with --pooling none"
                )
    if o.pooling is not None:
        pooling, where = o.pooling, "--pooling"
    notes.append(f"pooling {pooling} ({where})")
    if o.normalize is not None:
        normalize = o.normalize
        notes.append(f"normalize {normalize} (--{'' if normalize else 'no-'}normalize)")
    else:
        notes.append(f"normalize {normalize} ({'modules.json' if modules is not None else 'default'})")
    if o.pairs:
        raise SpecError(
            "--pairs is for text-classification (cross-encoders): an embedding model takes single texts"
        )
    return {"pooling": pooling, "normalize": normalize}


def _st_pooling(config_file: Path, override: str | None) -> str:
    if not config_file.is_file():
        raise SpecError(f"{config_file} is missing: the sentence-transformers Pooling module needs it")
    config = _json(config_file)
    modes = [
        k.removeprefix("pooling_mode_")
        for k, v in config.items()
        if k.startswith("pooling_mode_") and v is True
    ]
    mode = config.get("pooling_mode") if isinstance(config.get("pooling_mode"), str) else None
    chosen = mode or (modes[0] if len(modes) == 1 else None)
    names = {"mean_tokens": "mean", "cls_token": "cls", "mean": "mean", "cls": "cls"}
    if chosen in names:
        return names[chosen]
    if override is not None:
        return override
    raise SpecError(
        f"{config_file}: pooling {' + '.join(modes) or chosen or 'none'} is not supported (mean or cls): "
        "pass --pooling mean|cls to serve it pooled differently"
    )


def _classification_settings(config: dict[str, Any], o: Overrides, notes: list[str]) -> dict[str, Any]:
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


# --- ONNX files -----------------------------------------------------------------------------------


def _onnx(path: Path, o: Overrides) -> ModelSpec:
    inputs, outputs = graph_signature(path)
    notes: list[str] = []
    beside = path.parent
    config = _json(beside / "config.json") if (beside / "config.json").is_file() else {}
    tokenizer = o.tokenizer or (beside / "tokenizer.json" if (beside / "tokenizer.json").is_file() else None)
    roles = {spec.name: ROLE_NAMES.get(spec.name) for spec in inputs}
    looks_textual = all(r is not None for r in roles.values()) and all(
        s.dtype.startswith(("int", "uint")) for s in inputs
    )
    task = o.task
    if task is None:
        if tokenizer is not None and looks_textual:
            architecture = (config.get("architectures") or [""])[0]
            task = (
                "text-classification"
                if architecture.endswith("ForSequenceClassification")
                else "text-embedding"
            )
            notes.append(
                f"task {task} (integer inputs named {', '.join(roles)} and {tokenizer.name} beside the file)"
            )
        else:
            task = "tensor"
            notes.append(
                "task tensor (the graph's inputs are not text inputs with a tokenizer.json beside them)"
            )
    else:
        notes.append(f"task {task} (--task)")
    base: dict[str, Any] = {"path": path, "kind": "onnx", "task": task, "onnx_file": path, "config": config,
                            "inputs": inputs, "outputs": outputs}  # fmt: skip
    if task == "tensor":
        if any(v is not None for v in (o.pooling, o.normalize, o.pairs, o.tokenizer)):
            raise SpecError("--tokenizer, --pooling, --normalize and --pairs are for text tasks, not tensor")
        return ModelSpec(notes=tuple(notes), **base)

    for spec in inputs:
        if roles[spec.name] is None:
            raise SpecError(
                f"input {spec.name!r} of {path.name} is not one a text model takes ({', '.join(sorted(set(ROLE_NAMES)))}): "
                "use --task tensor to serve the graph as tensors"
            )
        if not spec.dtype.startswith(("int", "uint")):
            raise SpecError(
                f"input {spec.name!r} of {path.name} is {spec.dtype}: text inputs are integer token ids"
            )
    if tokenizer is None:
        raise SpecError(f"no tokenizer.json beside {path}: a {task} model needs one (give --tokenizer PATH)")
    _load_tokenizer(tokenizer)
    max_tokens, max_note = _max_tokens(beside, beside, tokenizer)
    limit, limit_note = _position_limit(config, config.get("model_type"))
    if max_tokens is None or (limit is not None and max_tokens > limit):
        max_tokens, max_note = (limit, limit_note) if limit is not None else (512, "default 512")
    notes.append(f"max tokens {max_tokens} ({max_note})")
    pad_id, pad_note = _pad_id(beside, tokenizer, config)
    notes.append(f"pad id {pad_id} ({pad_note})")
    fields: dict[str, Any] = {"tokenizer": tokenizer, "max_tokens": max_tokens, "pad_id": pad_id, "fusion": _fusion(config)}
    if task == "text-embedding":
        fields.update(_onnx_embedding(path, outputs, o, notes))
    else:
        fields.update(_onnx_classification(path, outputs, config, o, notes))
    return ModelSpec(notes=tuple(notes), **base, **fields)


def _onnx_embedding(
    path: Path, outputs: tuple[TensorSpec, ...], o: Overrides, notes: list[str]
) -> dict[str, Any]:
    wanted_rank = {None: None, "none": 2, "mean": 3, "cls": 3}[o.pooling]
    by_rank = [s for s in outputs if wanted_rank is None or len(s.shape) == wanted_rank]
    named = [s for s in by_rank if s.name in ("last_hidden_state", "token_embeddings", "sentence_embedding")]
    ranked = named or [s for s in by_rank if len(s.shape) in (2, 3)]
    output = ranked[0] if ranked else None
    if output is None:
        raise SpecError(
            f"{path.name} has no output of rank {wanted_rank or '2 or 3'} to embed from "
            f"(outputs: {', '.join(f'{s.name} {list(s.shape)}' for s in outputs)})"
        )
    pooling = o.pooling or ("none" if len(output.shape) == 2 else "mean")
    if not isinstance(output.shape[-1], int):
        raise SpecError(
            f"output {output.name!r} of {path.name} has a dynamic last axis: the embedding width must be fixed"
        )
    notes.append(
        f"output {output.name} {list(output.shape)}, pooling {pooling} ({'--pooling' if o.pooling else 'from its rank'})"
    )
    normalize = True if o.normalize is None else o.normalize
    notes.append(f"normalize {normalize} ({'default' if o.normalize is None else 'flag'})")
    if o.pairs:
        raise SpecError(
            "--pairs is for text-classification (cross-encoders): an embedding model takes single texts"
        )
    return {"output": output.name, "pooling": pooling, "normalize": normalize}


def _onnx_classification(
    path: Path, outputs: tuple[TensorSpec, ...], config: dict[str, Any], o: Overrides, notes: list[str]
) -> dict[str, Any]:
    output = next((s for s in outputs if s.name == "logits"), None) or next(
        (s for s in outputs if len(s.shape) == 2), None
    )
    if output is None or not isinstance(output.shape[-1], int):
        raise SpecError(f"{path.name} has no [batch, labels] output with a fixed number of labels")
    if config:
        fields = _classification_settings({**config, "num_labels": output.shape[-1]}, o, notes)
    else:
        fields = _classification_settings({"num_labels": output.shape[-1]}, o, notes)
        notes.append("labels LABEL_0.. (no config.json beside the file)")
    notes.append(f"output {output.name} {list(output.shape)}")
    return {"output": output.name, **fields}


def graph_signature(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (initializers excluded) and outputs, each a tensor with a known dtype."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise SpecError(f"{path} is not a valid ONNX file: {type(exc).__name__}: {str(exc)[:200]}") from None
    graph = model.graph
    if not graph.node or not graph.output:
        raise SpecError(f"{path} is not a valid ONNX file: its graph has no nodes or no outputs")
    initializers = {init.name for init in graph.initializer}
    inputs = tuple(_tensor(path, "input", v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_tensor(path, "output", v) for v in graph.output)
    if not inputs:
        raise SpecError(f"{path.name} takes no inputs")
    return inputs, outputs


def _tensor(path: Path, kind: str, value: Any) -> TensorSpec:
    which = value.type.WhichOneof("value")
    if which != "tensor_type":
        what = {"sequence_type": "a sequence", "map_type": "a map", "optional_type": "an optional",
                "sparse_tensor_type": "a sparse tensor"}.get(which or "", "not typed")  # fmt: skip
        raise SpecError(
            f"{kind} {value.name!r} of {path.name} is {what}, not a tensor: preheat serves models whose "
            f"inputs and outputs are all tensors"
        )
    tensor = value.type.tensor_type
    dtype = _DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise SpecError(
            f"{kind} {value.name!r} of {path.name} has element type {tensor.elem_type}, which preheat does not serve"
        )
    if not tensor.HasField("shape"):
        raise SpecError(f"{kind} {value.name!r} of {path.name} has no declared shape (not even its rank)")
    dims: list[int | str] = []
    for axis, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or f"{value.name}_axis{axis}")
    return TensorSpec(value.name, dtype, tuple(dims))
