"""Reading an ONNX file as a SPEC: its graph signature (every input and output a typed tensor), whether
its inputs are a text model's (token ids, mask, type ids by name) with a tokenizer.json beside it,
and which output the task reads. A config.json beside the file is read too (labels, max tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from functions.inference.manifest import TensorSpec
from layers.spec import ModelSpec, Overrides, SpecError
from layers.spec_text import (
    classification_settings,
    fusion_of,
    load_tokenizer,
    read_json,
    read_pad_id,
    token_limit,
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
_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
}  # fmt: skip


def read_onnx_file(path: Path, o: Overrides) -> ModelSpec:
    inputs, outputs = graph_signature(path)
    notes: list[str] = []
    beside = path.parent
    config = read_json(beside / "config.json") if (beside / "config.json").is_file() else {}
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
    load_tokenizer(tokenizer)
    max_tokens, max_note = token_limit(beside, beside, tokenizer, config)
    notes.append(f"max tokens {max_tokens} ({max_note})")
    pad_id, pad_note = read_pad_id(beside, tokenizer, config)
    notes.append(f"pad id {pad_id} ({pad_note})")
    fields: dict[str, Any] = {"tokenizer": tokenizer, "max_tokens": max_tokens, "pad_id": pad_id, "fusion": fusion_of(config)}
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
        fields = classification_settings({**config, "num_labels": output.shape[-1]}, o, notes)
    else:
        fields = classification_settings({"num_labels": output.shape[-1]}, o, notes)
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
