"""`preheat build`: the default model, from the PyPI package to two model directories:

- build/models/minilm-fp32/: the ONNX export, checked against PyTorch (the reference);
- build/models/minilm/: the slim model served by default: fused offline, quantized to the fastest
  configuration of a small search that passes the accuracy gate on held-out text.

Both are built in a temporary directory and swapped in together: a failed build leaves the previous
models in place, and a search with no passing candidate fails with every candidate's scores.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import EmbeddingSpec, Manifest, SessionHints, TensorSpec, TextSpec
from layers import export, gate, modeldir, optimize, paths, search, textdata, wordpiece
from layers.quantize import QuantConfig
from layers.source import Source

DEFAULT_NAME = paths.DEFAULT_MODEL_NAME
FP32_SUFFIX = "-fp32"
# all-MiniLM-L6-v2: BERT with 12 heads over a 384-wide hidden state.
MINILM = optimize.BertShape(num_heads=12, hidden_size=384)

Progress = Callable[[str], None]


class SlimmingFailed(SystemExit):
    """No candidate passed the gate; the message is the full report."""


@dataclass(frozen=True)
class Built:
    model_dir: Path  # the slim model
    fp32_dir: Path
    manifest: Manifest
    fp32_manifest: Manifest
    export_max_abs_diff: float
    result: search.SearchResult
    chosen: search.Outcome
    seconds: float


def build_default(
    source: Source,
    out_root: Path,
    name: str = DEFAULT_NAME,
    *,
    space: Sequence[QuantConfig] | None = None,
    ort_format: bool = False,
    progress: Progress = lambda _: None,
) -> Built:
    started = time.perf_counter()
    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_root, prefix=f".{name}-") as tmp:
        root = Path(tmp)
        fp32, slim, work = root / "fp32", root / "slim", root / "work"
        for folder in (fp32, slim, work):
            folder.mkdir()
        progress("exporting to ONNX with torch (offline) and checking it against PyTorch")
        diff = export.export(source.path, fp32 / "model.onnx")
        modeldir.write_tokenizer(source.path / "tokenizer.json", fp32 / "tokenizer.json", source.max_tokens)
        progress("compiling the tokenizer's WordPiece tables (and checking them against the library)")
        compiled = wordpiece.compile_tokenizer(
            fp32 / "tokenizer.json",
            fp32,
            max_tokens=source.max_tokens,
            texts=textdata.heldout() + textdata.calibration(),
        )
        if compiled.path is None:
            progress(f"the runtime will load tokenizer.json with the tokenizers library: {compiled.reason}")
        text = _text_spec(source, wordpiece=compiled.path.name if compiled.path else None)
        embedding = EmbeddingSpec(output=export.OUTPUT, dimensions=MINILM.hidden_size, pooling="mean", normalize=True)
        common = _common(source, text, embedding)
        fp32_manifest = modeldir.write_manifest(
            fp32,
            name=name + FP32_SUFFIX,
            **common,
            build={
                "format": "onnx",
                "precision": "fp32",
                "opset": export.OPSET,
                "external_data": True,
                "export_max_abs_diff": diff,
            },
        )

        progress("fusing BERT attention, LayerNorm and GELU (ONNX Runtime transformer optimizer)")
        fused = work / "fused.onnx"
        fusions = optimize.fuse_bert(fp32 / "model.onnx", fused, MINILM)

        heldout, calibration = textdata.heldout(), textdata.calibration()
        tokenizer_file = fp32 / "tokenizer.json"
        result = search.search(
            space if space is not None else search.default_space(),
            reference=fp32 / "model.onnx",
            fused=fused,
            work=work,
            encode=_encoder(tokenizer_file, text, embedding, common["inputs"], common["outputs"], heldout),
            calibration_feeds=_feeds(tokenizer_file, text.max_tokens, calibration),
            latency_feed=_long_feed(tokenizer_file, heldout, search.LATENCY_TOKENS),
            progress=progress,
        )
        chosen = result.chosen
        if chosen is None:
            raise SlimmingFailed(
                "no slimming candidate passed the accuracy gate; nothing was replaced.\n" + result.report()
            )

        model_format = "onnx"
        if ort_format:
            progress("writing the slim model in ONNX Runtime's format")
            _write_ort(chosen.path, slim / "model.ort", common, text, embedding, tokenizer_file, heldout[:32])
            model_format = "ort"
        else:
            for file in (chosen.path, optimize.data_file(chosen.path)):
                shutil.copy2(file, slim / file.name)
        shutil.copy2(tokenizer_file, slim / "tokenizer.json")
        if text.wordpiece is not None:
            shutil.copy2(fp32 / text.wordpiece, slim / text.wordpiece)
        thresholds = gate.EmbeddingThresholds()
        manifest = modeldir.write_manifest(
            slim,
            name=name,
            **{**common, "model_file": "model.ort" if ort_format else "model.onnx"},
            session=SessionHints(graph_optimization="disabled"),
            build={
                "format": model_format,
                "precision": "int8",
                "opset": export.OPSET,
                "external_data": not ort_format,
                "export_max_abs_diff": diff,
                "reference": {"model": name + FP32_SUFFIX, "model_id": fp32_manifest.model_id},
                "offline_optimization": {
                    "fusions": fusions,
                    "saved_level": optimize.PORTABLE_LEVEL,
                    "load_with": "disabled",
                },
                "quantization": {**chosen.config.as_dict(), "kept_nodes": list(chosen.kept)},
                "accuracy": {
                    **chosen.scores.as_dict(),
                    "batch1": chosen.batch1.as_dict(),
                    f"batch{search.GATE_BATCH}": chosen.batched.as_dict(),
                    "thresholds": {
                        "mean_cosine": thresholds.mean_cosine,
                        "min_cosine": thresholds.min_cosine,
                        "spearman": thresholds.spearman,
                        "top1": thresholds.top1,
                        "top1_margin": thresholds.top1_margin,
                    },
                    "heldout_sha256": hashlib.sha256(paths.HELDOUT_TEXT.read_bytes()).hexdigest(),
                },
                "size_ratio": chosen.size_ratio,
                "latency_ms_batch1_128_tokens": {
                    "fp32": round(chosen.reference_ms, 2),
                    "slim": round(chosen.latency_ms, 2),
                    "speedup": round(chosen.speedup, 2),
                },
                "candidates": [_summary(o) for o in result.outcomes],
            },
        )
        for folder in (fp32, slim):
            _world_readable(folder)
        fp32_target, slim_target = out_root / (name + FP32_SUFFIX), out_root / name
        for staged, target in ((fp32, fp32_target), (slim, slim_target)):
            if target.exists():
                shutil.rmtree(target)
            staged.rename(target)
        # TemporaryDirectory removes what is left (the work folder) on exit.
    return Built(
        model_dir=slim_target,
        fp32_dir=fp32_target,
        manifest=manifest,
        fp32_manifest=fp32_manifest,
        export_max_abs_diff=diff,
        result=result,
        chosen=chosen,
        seconds=time.perf_counter() - started,
    )


def _write_ort(
    onnx_model: Path,
    target: Path,
    common: dict[str, Any],
    text: TextSpec,
    embedding: EmbeddingSpec,
    tokenizer_file: Path,
    texts: Sequence[str],
) -> None:
    """Convert, then check the ORT-format file answers like the ONNX one it came from."""
    optimize.save_ort_format(onnx_model, target)
    encode = _encoder(tokenizer_file, text, embedding, common["inputs"], common["outputs"], texts)
    a, b = encode(onnx_model, "disabled", 8), encode(target, "disabled", 8)
    worst = float((a * b).sum(axis=1).min())
    if worst < 0.9999:
        raise SystemExit(f"the ORT-format model differs from its ONNX source (min cosine {worst:.6f})")


def _text_spec(source: Source, *, wordpiece: str | None) -> TextSpec:
    return TextSpec(
        feeds=dict(zip(("ids", "mask", "type_ids"), export.INPUTS, strict=True)),
        tokenizer="tokenizer.json",
        wordpiece=wordpiece,
        max_tokens=source.max_tokens,
        pad_id=0,
    )


def _common(source: Source, text: TextSpec, embedding: EmbeddingSpec) -> dict[str, Any]:
    seq = ("batch", "sequence")
    return {
        "version": "1",
        "task": "text-embedding",
        "model_file": "model.onnx",
        "inputs": tuple(TensorSpec(n, "int64", seq) for n in export.INPUTS),
        "outputs": (TensorSpec(export.OUTPUT, "float32", ("batch", "sequence", MINILM.hidden_size)),),
        "text": text,
        "embedding": embedding,
        "aliases": (source.model_id, source.model_id.split("/")[-1]),
        "source": {
            "package": source.package,
            "version": source.package_version,
            "model_id": source.model_id,
            "license": source.license,
        },
    }


def _summary(outcome: search.Outcome) -> dict[str, Any]:
    return {
        "name": outcome.config.name,
        "passed": outcome.passed,
        "bytes": outcome.model_bytes,
        "latency_ms": round(outcome.latency_ms, 2),
        "speedup": round(outcome.speedup, 2),
        "mean_cosine": round(outcome.scores.mean_cosine, 5),
        "min_cosine": round(outcome.scores.min_cosine, 5),
        "spearman": round(outcome.scores.spearman, 5),
        "top1": round(outcome.scores.top1, 4),
        "failures": list(outcome.failures),
    }


def _encoder(
    tokenizer_file: Path,
    text: TextSpec,
    embedding: EmbeddingSpec,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    texts: Sequence[str],
) -> search.Encoder:
    """Embeds texts exactly as the runtime serves them (same session options, tokenizer, pooling)."""
    from functions.inference.model import OnnxModel
    from functions.inference.tasks.embedding import Pooling
    from functions.inference.tasks.text import TextModel, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_file.parent, text, truncate=True)

    def encode(model: Path, graph_optimization: str, batch: int) -> np.ndarray:
        onnx_model = OnnxModel.load(model, inputs, outputs, threads=1, graph_optimization=graph_optimization)
        embedder = TextModel(onnx_model, tokenizer, text, Pooling(embedding), batch_size=batch, truncate=True)
        if batch == 1:
            return np.concatenate([embedder.rows([t]).values for t in texts])
        return embedder.rows(list(texts)).values

    return encode


def _feed(ids: list[int]) -> dict[str, np.ndarray]:
    array = np.array([ids], dtype=np.int64)
    return {"input_ids": array, "attention_mask": np.ones_like(array), "token_type_ids": np.zeros_like(array)}


def _feeds(tokenizer_file: Path, max_tokens: int, texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
    from functions.inference.tasks.text import LibraryTokenizer

    return [_feed(ids) for ids in LibraryTokenizer(tokenizer_file, max_tokens=max_tokens).encode(texts)]


def _long_feed(tokenizer_file: Path, texts: Sequence[str], tokens: int) -> dict[str, np.ndarray]:
    """One real input of exactly `tokens` tokens, from held-out text run together."""
    from functions.inference.tasks.text import LibraryTokenizer

    return _feed(LibraryTokenizer(tokenizer_file, max_tokens=tokens).encode([" ".join(texts)])[0])


def _world_readable(folder: Path) -> None:
    # Lambda layers keep the zip's modes: make the model world-readable, like any installed file.
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
