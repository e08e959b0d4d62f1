"""Quantize a (fused, fp32) model to one candidate configuration.

Pieces, each optional per configuration:
- smoothing of activation outliers (calibrated on calibration text, see calibrate.py);
- dynamic int8 (ORT's MatMulInteger/QAttention path: per-channel, reduce-range, node exclusion) or
  static int8 in QDQ format with activation ranges calibrated on calibration text;
- the `keep` most sensitive MatMuls left out of per-tensor int8 and stored instead as block-wise int8
  (MatMulNBits: one scale per 32 weights, activations quantized per block at run time), fp32, int8
  with one activation scale per token (per_token.py), or split into their N outlier input channels in
  fp32 and the rest in int8 (`split-N`, outlier_split.py);
- the word-embedding table as int8 with one scale per row (a Gather of int8 rows, a Cast, and a Mul by
  the row's scale: standard ONNX ops), a quarter of the fp32 table's bytes.

`weight-only` is a method of its own (weight_only.py: int8 weights, fp32 compute, dequantized when the
session loads) and `none` is the optimized fp32 graph, what ships when no int8 candidate passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layers import outlier_split, per_token, weight_only
from layers.optimize import quiet, remove_model, save_model

NAMED_KEEP_AS = ("int8-block", "fp32", "per-token")
KEEP_AS = (*NAMED_KEEP_AS, "split-N")  # N: a number of channels, e.g. split-128
SMOOTH_GRID = (0.5, 0.7, 0.85, 0.95)
METHODS = ("dynamic", "static", "weight-only", "none")
DYNAMIC_OPS = ("MatMul", "Attention")
STATIC_OPS = ("MatMul",)
EMBEDDINGS = ("int8-row", "fp32")
# Gather tables at least this big (bytes, fp32) are quantized by row: word and position embeddings,
# not the two-row token-type table.
EMBEDDING_MIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class QuantConfig:
    name: str
    method: str = "dynamic"
    per_channel: bool = True
    reduce_range: bool = True
    smooth_alpha: float | None = None  # one alpha for every node
    smooth_per_node: bool = False  # alpha per node from SMOOTH_GRID (smooth_alpha must be None)
    keep: int = 0  # how many of the most sensitive MatMuls stay out of per-tensor int8
    keep_as: str = "int8-block"
    embeddings: str = "int8-row"
    # The ops int8 covers; None: DYNAMIC_OPS or STATIC_OPS (transformers). CNNs add Conv, Gemm.
    op_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"quantization method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.keep_as not in NAMED_KEEP_AS and self.split_channels is None:
            raise ValueError(
                f"keep_as {self.keep_as!r} is not one of {', '.join(KEEP_AS)} (N a number of channels >= 1)"
            )
        if self.embeddings not in EMBEDDINGS:
            raise ValueError(f"embeddings {self.embeddings!r} is not one of {', '.join(EMBEDDINGS)}")
        if self.smooth_per_node and self.smooth_alpha is not None:
            raise ValueError("choose smooth_alpha or smooth_per_node, not both")
        if self.smooth_alpha is not None and not 0.0 < self.smooth_alpha < 1.0:
            raise ValueError(f"smooth_alpha must be between 0 and 1, got {self.smooth_alpha}")
        if self.keep < 0:
            raise ValueError(f"keep must be >= 0, got {self.keep}")

    @property
    def split_channels(self) -> int | None:
        """N for keep_as "split-N": how many outlier input channels of each kept MatMul stay fp32."""
        prefix, _, count = self.keep_as.partition("-")
        if prefix == "split" and count.isdigit() and int(count) > 0:
            return int(count)
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Quantized:
    path: Path
    kept: tuple[str, ...]  # node names left out of per-tensor int8


def apply(
    config: QuantConfig,
    source: Path,
    target: Path,
    *,
    kept: Sequence[str],
    calibration_feeds: Sequence[dict[str, np.ndarray]],
    work: Path,
) -> Quantized:
    """Write target: source (the fused graph, already smoothed if config says so) quantized per
    config, with the nodes in kept left out of per-tensor int8. work is a scratch directory."""
    import onnx

    if config.method == "weight-only":
        weight_only.apply(source, target)
        return Quantized(target, ())
    if config.method == "none":
        save_model(onnx.load(str(source)), target)
        return Quantized(target, ())
    stage = source
    if kept and config.split_channels is not None:
        halves = work / "split.onnx"
        kept = outlier_split.split(
            stage, halves, kept, channels=config.split_channels, feeds=calibration_feeds
        )
        stage = halves
    int8 = work / "int8.onnx"
    if config.method == "dynamic":
        _dynamic(stage, int8, config, exclude=kept, op_types=config.op_types or DYNAMIC_OPS)
    else:
        static = work / "static.onnx"
        _static(stage, static, config, exclude=kept, feeds=calibration_feeds)
        # ONNX Runtime has no QDQ form of the fused Attention op: its weights go dynamic int8.
        _dynamic(static, int8, config, exclude=kept, op_types=("Attention",))
    stage = int8
    if kept and config.keep_as == "int8-block":
        blocked = work / "blocked.onnx"
        _block_int8(stage, blocked, kept)
        stage = blocked
    elif kept and config.keep_as == "per-token":
        tokens = work / "per_token.onnx"
        per_token.apply(stage, tokens, kept)
        stage = tokens
    if config.embeddings == "int8-row":
        rows = work / "embeddings.onnx"
        quantize_embeddings(stage, rows)
        stage = rows
    save_model(onnx.load(str(stage)), target)
    return Quantized(target, tuple(kept))


def _dynamic(
    source: Path,
    target: Path,
    config: QuantConfig,
    *,
    exclude: Sequence[str],
    op_types: Sequence[str] = DYNAMIC_OPS,
) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    remove_model(target)
    with quiet():
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=list(op_types),
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
            use_external_data_format=True,
            # Fused contrib ops (Attention, SkipLayerNormalization) have no ONNX shape inference.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


class _Feeds:
    """ORT's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._iter = iter(list(feeds))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:  # pragma: no cover - ORT calls it for some calibrators only
        pass


def _static(
    source: Path,
    target: Path,
    config: QuantConfig,
    *,
    exclude: Sequence[str],
    feeds: Sequence[dict[str, np.ndarray]],
) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    remove_model(target)
    with quiet():
        quantize_static(
            str(source),
            str(target),
            _Feeds(feeds),  # type: ignore[arg-type]
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(config.op_types or STATIC_OPS),
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
            use_external_data_format=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )


def _block_int8(source: Path, target: Path, nodes: Sequence[str]) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    with quiet():
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(source)),
            bits=8,
            block_size=32,
            is_symmetric=True,
            accuracy_level=4,  # int8 compute with per-block activation scales: fast and accurate
            nodes_to_include=list(nodes),
            op_types_to_quantize=("MatMul",),
        )
        quantizer.process()
    save_model(quantizer.model.model, target)


def quantize_embeddings(source: Path, target: Path) -> int:
    """Replace each large constant Gather table with int8 rows + one fp32 scale per row; return how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    inits = {init.name: init for init in model.graph.initializer}
    nodes = []
    count = 0
    for node in model.graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is None or axis != 0 or len(table.dims) != 2 or table.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        values = numpy_helper.to_array(table)
        if values.nbytes < EMBEDDING_MIN_BYTES:
            nodes.append(node)
            continue
        scale = np.maximum(np.abs(values).max(axis=1, keepdims=True), 1e-12) / 127.0
        rows = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
        base = table.name
        model.graph.initializer.remove(table)
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(rows, f"{base}/int8"),
                numpy_helper.from_array(scale.astype(np.float32), f"{base}/scale"),
            ]
        )
        ids, out, prefix = node.input[1], node.output[0], node.name or base
        nodes += [
            helper.make_node(
                "Gather", [f"{base}/int8", ids], [f"{prefix}/rows_int8"], name=f"{prefix}/gather_int8"
            ),
            helper.make_node(
                "Gather", [f"{base}/scale", ids], [f"{prefix}/row_scale"], name=f"{prefix}/gather_scale"
            ),
            helper.make_node(
                "Cast",
                [f"{prefix}/rows_int8"],
                [f"{prefix}/rows"],
                name=f"{prefix}/cast",
                to=onnx.TensorProto.FLOAT,
            ),
            helper.make_node(
                "Mul", [f"{prefix}/rows", f"{prefix}/row_scale"], [out], name=f"{prefix}/dequantize"
            ),
        ]
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    save_model(model, target)
    return count
