"""`tensor`: any ONNX model, typed arrays in and out.

Export: the ONNX file as given, checked and re-saved with external data. Data: `--sample` (.npz, one
array per input) or samples drawn from the graph's declared shapes and dtypes (floats normal(0, 1);
integers in a range the graph accepts: layers/samples.integer_bounds; dynamic axes other than the
batch from --shape). Gate: every output against fp32 (cosine per sample and relative error; integer
outputs exactly). Space: int8 for Conv, MatMul and Gemm (dynamic, and static QDQ calibrated on the
calibration samples) and weight-only int8; no transformer smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import Manifest
from layers import calibrate, export, gate, samples, search
from layers.quantize import QuantConfig
from layers.samples import Split
from layers.spec import ModelSpec, SpecError
from layers.tasks import Feed, Measured, Progress, Sections, Slimming

GATE_BATCH = 8


def space() -> tuple[QuantConfig, ...]:
    return (
        QuantConfig("dynamic-int8", op_types=("MatMul", "Conv"), embeddings="fp32"),
        QuantConfig(
            "static-qdq-int8", method="static", op_types=("Conv", "MatMul", "Gemm"), embeddings="fp32"
        ),
        search.WEIGHT_ONLY,
    )


class Tensor:
    task = "tensor"

    def split(self, spec: ModelSpec, sample: Path | None, shapes: dict[str, tuple[int, ...]]) -> Split:
        assert spec.onnx_file is not None
        if sample is not None and sample.suffix != ".npz":
            raise SpecError(
                f"--sample {sample}: a tensor model takes an .npz with one array per input (numpy.savez)"
            )
        return samples.tensor_split(spec.onnx_file, spec.inputs, sample, shapes)

    def export(self, spec: ModelSpec, data: Split, target: Path, progress: Progress) -> Sections:
        assert spec.onnx_file is not None
        progress("checking the ONNX file and saving it with external data")
        exported = export.import_onnx(spec.onnx_file, target / "model.onnx")
        return Sections(
            task=self.task,
            inputs=exported.inputs,
            outputs=exported.outputs,
            opset=exported.opset,
            export_max_abs_diff=0.0,
        )

    def gate(self, fp32_dir: Path, manifest: Manifest, data: Split) -> TensorGate:
        return TensorGate(fp32_dir, manifest, data.gate)

    def slimming(self, spec: ModelSpec, data: Split, fp32_dir: Path, manifest: Manifest) -> Slimming:
        return Slimming(
            gate=self.gate(fp32_dir, manifest, data),
            space=space(),
            calibration_feeds=list(data.calibration),
            latency_feed=data.gate[0],
            latency_input="one sample",
            probe=calibrate.Probe(calibrate.output_rows(None), calibrate.relative_error),
        )


class TensorGate:
    """Every gate sample through the served task: alone, then in batches of GATE_BATCH along axis 0
    (when every input's axis 0 is dynamic)."""

    def __init__(self, fp32_dir: Path, manifest: Manifest, feeds: Sequence[Feed]) -> None:
        self.fp32_dir, self.manifest, self.feeds = fp32_dir, manifest, list(feeds)
        self.limits = gate.TensorThresholds()
        self.thresholds = {
            "min_cosine": self.limits.min_cosine,
            "relative_error": self.limits.relative_error,
            "agreement": self.limits.agreement,
        }
        self.batchable = all(isinstance(s.shape[0], str) for s in manifest.inputs if s.shape)
        self.reference = self.outputs(fp32_dir / manifest.model_file, manifest.session.graph_optimization)

    def outputs(
        self, model_file: Path, graph_optimization: str
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        from functions.inference.runtime import open_task

        task = open_task(
            self.fp32_dir,
            manifest=self.manifest,
            model_file=model_file,
            graph_optimization=graph_optimization,
        )
        one = [task.infer(feed).outputs for feed in self.feeds]
        if self.batchable:
            many = []
            for start in range(0, len(self.feeds), GATE_BATCH):
                chunk = self.feeds[start : start + GATE_BATCH]
                stacked = {name: np.concatenate([f[name] for f in chunk]) for name in chunk[0]}
                many.append(task.infer(stacked).outputs)
        else:
            many = one
        return _joined(one), _joined(many)

    def measure(self, model_file: Path, graph_optimization: str) -> Measured:
        one_out, many_out = self.outputs(model_file, graph_optimization)
        one = gate.tensor_scores(self.reference[0], one_out)
        many = gate.tensor_scores(self.reference[1], many_out)
        worst = gate.TensorScores.worst(one, many)
        return Measured(worst, one, many, worst.failures(self.limits))


def _joined(results: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([np.atleast_1d(r[name]) for r in results]) for name in results[0]}


RECIPE = Tensor()
