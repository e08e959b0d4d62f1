"""`preheat build`: a model SPEC to two model directories under build/models/:

- NAME-fp32/: the export (ONNX with external data, checked against PyTorch) or the ONNX file as
  given, with the task's files (tokenizer) and manifest: the reference;
- NAME/: the slim model served: fused offline where the architecture allows, then the candidate of
  a small search that the objective prefers among those passing the task's accuracy gate; when none
  passes, the optimized fp32 graph, and the report and the manifest's `build` section say so.

What differs per task (export, data, gate, probe, search space) comes from the task's recipe
(layers/tasks/); nothing here knows a model, a shape, an input name or a text set. Both directories
are built in a temporary directory and swapped in together: a failed build leaves the previous
models in place. The default model (layers/source.py) is built by the same path.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.inference.manifest import Manifest, SessionHints
from layers import modeldir, optimize, paths, search, tasks
from layers import spec as specs
from layers.quantize import QuantConfig
from layers.samples import Split
from layers.source import Source

DEFAULT_NAME = paths.DEFAULT_MODEL_NAME
FP32_SUFFIX = "-fp32"
FALLBACK_REASON = (
    "no int8 candidate passed the accuracy gate and the size limit: the optimized fp32 graph ships"
)

Progress = Callable[[str], None]


class SlimmingFailed(SystemExit):
    """Not even the optimized fp32 graph passes the gate (an offline fusion changed the model's
    answers); the message is the full report."""


@dataclass(frozen=True)
class Built:
    model_dir: Path  # the served model: slim, or the optimized fp32 fallback
    fp32_dir: Path
    manifest: Manifest
    fp32_manifest: Manifest
    export_max_abs_diff: float
    result: search.SearchResult
    chosen: search.MeasuredCandidate  # what the served directory holds
    fell_back: bool  # no int8 candidate passed: chosen is the optimized fp32 graph
    objective: str
    spec: specs.ModelSpec
    data: Split
    notes: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0


def build(
    spec: specs.ModelSpec,
    out_root: Path,
    name: str,
    *,
    sample: Path | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
    objective: str = "speed",
    space: Sequence[QuantConfig] | None = None,
    ort_format: bool = False,
    version: str = "1",
    aliases: tuple[str, ...] = (),
    source: dict[str, Any] | None = None,
    progress: Progress = lambda _: None,
) -> Built:
    if objective not in search.OBJECTIVES:
        raise specs.SpecError(f"--objective {objective!r} is not one of {', '.join(search.OBJECTIVES)}")
    started = time.perf_counter()
    recipe = tasks.recipe(spec.task)
    data = recipe.split(spec, sample, shapes or {})  # a bad --sample or --shape fails before the export
    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_root, prefix=f".{name}-") as tmp:
        root = Path(tmp)
        fp32, slim, work = root / "fp32", root / "slim", root / "work"
        for folder in (fp32, slim, work):
            folder.mkdir()
        sections = recipe.export(spec, data, fp32, progress)
        common = {
            "version": version,
            "model_file": "model.onnx",
            "aliases": tuple(a for a in aliases if a != name),
            "source": source if source is not None else _source(spec),
            **sections.manifest_fields(),
        }
        fp32_manifest = modeldir.write_manifest(
            fp32,
            name=name + FP32_SUFFIX,
            **common,
            build={
                "format": "onnx",
                "precision": "fp32",
                "opset": sections.opset,
                "external_data": True,
                "export_max_abs_diff": sections.export_max_abs_diff,
            },
        )
        fused = work / "fused.onnx"
        fusions = _fuse(fp32 / "model.onnx", fused, sections.fusion, progress)
        slimming = recipe.slimming(spec, data, fp32, fp32_manifest)
        result = search.search(
            space if space is not None else slimming.space,
            reference=fp32 / "model.onnx",
            fused=fused,
            work=work,
            gate=slimming.gate,
            calibration_feeds=slimming.calibration_feeds,
            latency_feed=slimming.latency_feed,
            probe=slimming.probe,
            latency_input=slimming.latency_input,
            progress=progress,
        )
        chosen, fell_back = result.shipped(objective)
        if chosen is None or not chosen.passed:
            raise SlimmingFailed(
                "not even the optimized fp32 graph passes the accuracy gate (an offline optimization changed "
                "the model's answers); nothing was replaced.\n" + result.report()
            )

        model_format = "onnx"
        if ort_format:
            progress("writing the slim model in ONNX Runtime's format")
            _write_ort(chosen, slim / "model.ort", slimming.gate)
            model_format = "ort"
        else:
            for file in (chosen.path, optimize.data_file(chosen.path)):
                shutil.copy2(file, slim / file.name)
        for task_file in _task_files(fp32_manifest):
            shutil.copy2(fp32 / task_file, slim / task_file)
        precision = (
            "fp32" if fell_back else ("int8-weights" if chosen.config.method == "weight-only" else "int8")
        )
        manifest = modeldir.write_manifest(
            slim,
            name=name,
            **{**common, "model_file": "model.ort" if ort_format else "model.onnx"},
            session=SessionHints(graph_optimization=chosen.load_with),
            build={
                "format": model_format,
                "precision": precision,
                "opset": sections.opset,
                "external_data": not ort_format,
                "export_max_abs_diff": sections.export_max_abs_diff,
                "reference": {"model": name + FP32_SUFFIX, "model_id": fp32_manifest.model_id},
                "offline_optimization": {
                    "fusions": fusions,
                    "saved_level": optimize.PORTABLE_LEVEL,
                    "load_with": chosen.load_with,
                },
                "objective": objective,
                **({"fallback": {"reason": FALLBACK_REASON}} if fell_back else {}),
                "quantization": {**chosen.config.as_dict(), "kept_nodes": list(chosen.kept)},
                "accuracy": {
                    **_scores_dict(chosen.scores),
                    "batch1": _scores_dict(chosen.batch1),
                    f"batch{search.GATE_BATCH}": _scores_dict(chosen.batched),
                    "thresholds": slimming.gate.thresholds,
                    "data": data.description,
                },
                "size_ratio": chosen.size_ratio,
                "session_create_ms": {
                    "fp32": round(result.reference_session_ms, 1),
                    "slim": round(chosen.session_ms, 1),
                },
                "latency_ms_batch1": {
                    "input": result.latency_input,
                    "fp32": round(chosen.reference_ms, 3),
                    "slim": round(chosen.latency_ms, 3),
                    "speedup": round(chosen.speedup, 2),
                },
                "candidates": [_summary(o) for o in result.outcomes]
                + ([_summary(result.fallback)] if result.fallback is not None else []),
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
        export_max_abs_diff=sections.export_max_abs_diff,
        result=result,
        chosen=chosen,
        fell_back=fell_back,
        objective=objective,
        spec=spec,
        data=data,
        notes=spec.notes + sections.notes + (f"fusions: {_fusion_note(sections.fusion, fusions)}",),
        seconds=time.perf_counter() - started,
    )


def build_default(
    source: Source,
    out_root: Path,
    name: str = DEFAULT_NAME,
    *,
    space: Sequence[QuantConfig] | None = None,
    ort_format: bool = False,
    objective: str = "speed",
    progress: Progress = lambda _: None,
) -> Built:
    """The default model (all-MiniLM-L6-v2 from its PyPI package), by the same path as any other."""
    return build(
        specs.read(source.path),
        out_root,
        name,
        space=space,
        ort_format=ort_format,
        objective=objective,
        aliases=source.aliases,
        source=source.manifest_source(),
        progress=progress,
    )


def _fuse(source: Path, target: Path, fusion: specs.Fusion, progress: Progress) -> dict[str, int]:
    """The transformer optimizer's fusions with the model's own head count and width, or the graph
    unchanged when the architecture is not one it knows (the portable save still optimizes it)."""
    if fusion.model_type is None:
        optimize.copy_model(source, target)
        return {}
    progress(
        f"fusing attention, LayerNorm and GELU (ONNX Runtime transformer optimizer, model_type "
        f"{fusion.model_type}, {fusion.num_heads} heads, hidden {fusion.hidden_size})"
    )
    return optimize.fuse_transformer(source, target, fusion.model_type, fusion.num_heads, fusion.hidden_size)


def _fusion_note(fusion: specs.Fusion, fusions: dict[str, int]) -> str:
    if fusion.model_type is None:
        return "none (no transformer optimizer for this architecture; ONNX Runtime's portable optimizations only)"
    found = ", ".join(f"{k} {v}" for k, v in sorted(fusions.items())) or "none matched"
    return f"{fusion.model_type}, {fusion.num_heads} heads, hidden {fusion.hidden_size}: {found}"


def _task_files(manifest: Manifest) -> list[str]:
    if manifest.text is None:
        return []
    return [manifest.text.tokenizer] + ([manifest.text.wordpiece] if manifest.text.wordpiece else [])


def _source(spec: specs.ModelSpec) -> dict[str, Any]:
    return {
        "path": str(spec.path.resolve()),
        "kind": spec.kind,
        **({"architecture": spec.architecture} if spec.architecture else {}),
        **({"model_type": spec.model_type} if spec.model_type else {}),
    }


def _scores_dict(scores: Any) -> dict[str, Any]:
    return dict(scores.as_dict()) if scores is not None else {}


def _summary(outcome: search.MeasuredCandidate) -> dict[str, Any]:
    return {
        "name": outcome.config.name,
        "passed": outcome.passed,
        "bytes": outcome.model_bytes,
        "load_with": outcome.load_with,
        "session_create_ms": round(outcome.session_ms, 1),
        "latency_ms": round(outcome.latency_ms, 3),
        "speedup": round(outcome.speedup, 2),
        **{k: _rounded(v) for k, v in _scores_dict(outcome.scores).items()},
        "failures": list(outcome.failures),
    }


def _rounded(value: Any) -> Any:
    return round(value, 5) if isinstance(value, float) else value


def _write_ort(chosen: search.MeasuredCandidate, target: Path, gate: tasks.Gate) -> None:
    """Convert, then gate the ORT-format file like any candidate: it must pass too."""
    optimize.save_ort_format(chosen.path, target)
    measured = gate.measure(target, chosen.load_with)
    if measured.failures:
        raise SystemExit(
            f"the ORT-format model fails the gate its ONNX source passed: {'; '.join(measured.failures)}"
        )


def _world_readable(folder: Path) -> None:
    # Lambda layers keep the zip's modes: make the model world-readable, like any installed file.
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
