"""Reading a Hugging Face model directory as a SPEC: config.json, weights and tokenizer.json, and the
sentence-transformers layout (modules.json, 1_Pooling/config.json, 2_Normalize) for pooling and
normalization. Imports transformers' registries only (to name the architectures it can export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layers.spec import ModelSpec, Overrides, SpecError
from layers.spec_text import (
    classification_settings,
    fusion_of,
    load_tokenizer,
    read_json,
    read_pad_id,
    token_limit,
)

WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def read_directory(path: Path, o: Overrides) -> ModelSpec:
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
    config = read_json(config_file)
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
    max_tokens, max_note = token_limit(path, transformer_dir, tokenizer, config)
    notes.append(f"max tokens {max_tokens} ({max_note})")
    pad_id, pad_note = read_pad_id(transformer_dir, tokenizer, config)
    notes.append(f"pad id {pad_id} ({pad_note})")

    fields: dict[str, Any] = {}
    if task == "text-embedding":
        fields.update(_embedding_settings(path, modules, o, notes))
    else:
        fields.update(classification_settings(config, o, notes))
    fusion = fusion_of(config)
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
    load_tokenizer(found)
    return found


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
    config = read_json(config_file)
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
