"""What the text recipes share: the tokenizer written beside the model (and its compiled WordPiece
tables for single-text BERT tokenizers), the export with the graph inputs named by their roles, the
gate run through the served task (functions/inference/runtime.open_task), and feeds for calibration
and latency built with the served tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import Manifest, TextSpec
from layers import export, modeldir, samples, wordpiece
from layers.samples import Item, Split
from layers.spec import ModelSpec, SpecError
from layers.spec_onnx import ROLE_NAMES
from layers.tasks import Feed, Measured, Progress, Sections

GATE_BATCH = 8  # the batched half of the gate (search.GATE_BATCH)
LATENCY_TOKENS = 128


def split(spec: ModelSpec, sample: Path | None, shapes: dict[str, tuple[int, ...]]) -> Split:
    if shapes:
        raise SpecError("--shape is for tensor models: a text model's shapes come from its tokenizer")
    return samples.text_split(sample, pairs=spec.pairs)


def texts_of(items: Sequence[Item]) -> list[str]:
    return [t for item in items for t in ((item,) if isinstance(item, str) else item)]


def export_text(
    spec: ModelSpec, data: Split, target: Path, progress: Progress, *, head: str
) -> tuple[export.Exported, TextSpec, tuple[str, ...]]:
    """The tokenizer, the graph and the TextSpec of a text model, written into target."""
    notes = []
    tokenizer_file = target / "tokenizer.json"
    assert spec.tokenizer is not None
    modeldir.write_tokenizer(spec.tokenizer, tokenizer_file, spec.max_tokens)
    if spec.kind == "onnx":
        progress("checking the ONNX file and saving it with external data")
        assert spec.onnx_file is not None
        exported = export.import_onnx(spec.onnx_file, target / "model.onnx")
        names = tuple(s.name for s in exported.inputs)
    else:
        names = export.hf_input_names(spec, head)
        progress(
            f"exporting {spec.architecture or spec.model_type} to ONNX with torch and checking it against PyTorch"
        )
        exported = export.export_hf(
            spec,
            target / "model.onnx",
            head=head,
            names=names,
            checks=_check_feeds(tokenizer_file, spec, names, data.calibration),
        )
        notes.append(
            f"exported with inputs {', '.join(names)} (from {spec.architecture or spec.model_type}'s forward)"
        )
    feeds = {ROLE_NAMES[name]: name for name in names}
    progress("compiling the tokenizer's WordPiece tables (and checking them against the library)")
    result = wordpiece.compile_tokenizer(
        tokenizer_file,
        target,
        max_tokens=spec.max_tokens,
        texts=texts_of(data.gate) + texts_of(data.calibration),
        pairs=spec.pairs,
    )
    compiled = result.path.name if result.path is not None else None
    checked = f"{result.checked_texts} texts{' and pairs of them' if spec.pairs else ''} checked against the library"
    notes.append(
        f"tokenizer: compiled WordPiece tables ({checked})"
        if compiled
        else f"tokenizer: the tokenizers library at run time ({result.reason})"
    )
    text = TextSpec(
        feeds=feeds,
        tokenizer="tokenizer.json",
        wordpiece=compiled,
        max_tokens=spec.max_tokens,
        pad_id=spec.pad_id,
        pairs=spec.pairs,
    )
    return exported, text, tuple(notes)


def sections(
    exported: export.Exported, spec: ModelSpec, text: TextSpec, notes: tuple[str, ...], **task: Any
) -> Sections:
    return Sections(
        inputs=exported.inputs,
        outputs=exported.outputs,
        opset=exported.opset,
        export_max_abs_diff=exported.max_abs_diff,
        fusion=spec.fusion,
        text=text,
        notes=notes,
        **task,
    )


def _library(tokenizer_file: Path, max_tokens: int) -> Any:
    from functions.inference.tasks.text import LibraryTokenizer

    return LibraryTokenizer(tokenizer_file, max_tokens=max_tokens)


def _encode(tokenizer: Any, items: Sequence[Item]) -> list[tuple[list[int], list[int]]]:
    if items and not isinstance(items[0], str):
        return tokenizer.encode_pairs(items)  # type: ignore[no-any-return]
    return [(ids, [0] * len(ids)) for ids in tokenizer.encode(items)]


def _padded(encoded: Sequence[tuple[list[int], list[int]]], names: Sequence[str], pad_id: int) -> Feed:
    width = max(len(ids) for ids, _ in encoded)
    by_role = {
        "ids": np.full((len(encoded), width), pad_id, dtype=np.int64),
        "mask": np.zeros((len(encoded), width), dtype=np.int64),
        "type_ids": np.zeros((len(encoded), width), dtype=np.int64),
    }
    for row, (ids, types) in enumerate(encoded):
        by_role["ids"][row, : len(ids)] = ids
        by_role["mask"][row, : len(ids)] = 1
        by_role["type_ids"][row, : len(ids)] = types
    return {name: by_role[ROLE_NAMES[name]] for name in names}


def _check_feeds(
    tokenizer_file: Path, spec: ModelSpec, names: Sequence[str], items: Sequence[Item]
) -> list[Feed]:
    """Two padded batches of different sizes and lengths from the calibration data: the shortest and
    longest item (padding in the traced batch, so no mask shortcut is traced), then three others."""
    tokenizer = _library(tokenizer_file, min(spec.max_tokens, 64))
    encoded = _encode(tokenizer, items)
    order = sorted(range(len(items)), key=lambda i: len(encoded[i][0]))
    first = [encoded[order[0]], encoded[order[-1]]]
    middle = [
        encoded[order[len(order) // 4]],
        encoded[order[len(order) // 2]],
        encoded[order[3 * len(order) // 4]],
    ]
    return [_padded(first, names, spec.pad_id), _padded(middle, names, spec.pad_id)]


def calibration_feeds(fp32_dir: Path, manifest: Manifest, items: Sequence[Item]) -> list[Feed]:
    """One unpadded batch-1 feed per item, tokenized as served."""
    assert manifest.text is not None
    tokenizer = _library(fp32_dir / manifest.text.tokenizer, manifest.text.max_tokens)
    names = tuple(manifest.text.feeds.values())
    return [_padded([e], names, manifest.text.pad_id) for e in _encode(tokenizer, items)]


def latency_feed(fp32_dir: Path, manifest: Manifest, items: Sequence[Item]) -> tuple[Feed, str]:
    """One real input of exactly min(128, max tokens) tokens, from the gate's items run together."""
    assert manifest.text is not None
    tokens = min(LATENCY_TOKENS, manifest.text.max_tokens)
    tokenizer = _library(fp32_dir / manifest.text.tokenizer, tokens)
    texts = texts_of(items)
    joined: Item = (" ".join(texts[0::2]), " ".join(texts[1::2])) if manifest.text.pairs else " ".join(texts)
    encoded = _encode(tokenizer, [joined])
    names = tuple(manifest.text.feeds.values())
    return _padded(encoded, names, manifest.text.pad_id), f"{len(encoded[0][0])} tokens"


class TextGate:
    """Runs the gate's items through the task as served (open_task: tokenizer, feeds, head) on the
    fp32 model once, then on each candidate: each item alone (batch 1) and all of them in batches of
    GATE_BATCH sorted by length, as the runtime batches them."""

    def __init__(
        self,
        fp32_dir: Path,
        manifest: Manifest,
        items: Sequence[Item],
        *,
        rows: Callable[[Any, Sequence[Item]], np.ndarray],
        score: Callable[[np.ndarray, np.ndarray], Any],
        worst: Callable[..., Any],
        failures: Callable[[Any], tuple[str, ...]],
        thresholds: dict[str, float],
    ) -> None:
        self.fp32_dir, self.manifest, self.items = fp32_dir, manifest, list(items)
        self._rows, self._score, self._worst, self._failures = rows, score, worst, failures
        self.thresholds = thresholds
        self.reference = self.outputs(fp32_dir / manifest.model_file, manifest.session.graph_optimization)

    def outputs(self, model_file: Path, graph_optimization: str) -> tuple[np.ndarray, np.ndarray]:
        from functions.inference.runtime import open_task

        task = open_task(
            self.fp32_dir,
            manifest=self.manifest,
            model_file=model_file,
            graph_optimization=graph_optimization,
            batch_size=GATE_BATCH,
        )
        batch1 = np.concatenate([self._rows(task, [item]) for item in self.items])
        return batch1, self._rows(task, self.items)

    def measure(self, model_file: Path, graph_optimization: str) -> Measured:
        batch1, batched = self.outputs(model_file, graph_optimization)
        one = self._score(self.reference[0], batch1)
        many = self._score(self.reference[1], batched)
        worst = self._worst(one, many)
        return Measured(worst, one, many, self._failures(worst))
