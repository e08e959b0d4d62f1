"""A MatMul in int8 with one activation scale per token (row) instead of one per tensor.

BERT's massive activations sit in a few tokens ([CLS], [SEP], punctuation): with one scale for the
whole tensor (ORT's DynamicQuantizeLinear), every other token is quantized with a step sized for
them. Here each row x_r is quantized over its own [min, max] (with 0): x_r ~ s_r (q_r - z_r).

The bit widths are chosen for ONNX Runtime's u8*s8 kernels, the fast ones on every x86 CPU: on AVX2
without VNNI they sum pairs of u8*s8 products in saturating int16, so 8-bit activations need 7-bit
weights (what reduce_range does). Here it is the other way round: activations take 7 bits (0..128
after rounding) and weights a full 8 (+-127, one scale per output column), 2 * 128 * 127 < 2^15.
Measured on MiniLM's most sensitive MatMul (calibration text, relative error of the product): 7-bit
weights with 8-bit symmetric per-token activations 0.0126, 8-bit weights with 7-bit asymmetric
activations 0.0108; u8*u8 with 8 bits for both 0.0066 but 25% slower than u8*s8 here.

MatMulInteger takes one scalar zero point for its input, so the per-row zero points are applied
after the product: (q - z_r 1) W_q = q W_q - z_r * column sums of W_q. Standard ONNX ops only:
Reshape to rows, ReduceMax/ReduceMin, QuantizeLinear (per-axis, scales computed at run time),
MatMulInteger, Cast, the zero-point correction, two Muls, Reshape back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ACTIVATION_LEVELS = 127  # 7 bits: see the module docstring
WEIGHT_MAX = 127


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per output column: int8 in [-127, 127], and the column scales."""
    scale = (np.maximum(np.abs(weight).max(axis=0), 1e-12) / WEIGHT_MAX).astype(np.float32)
    quantized = np.clip(np.round(weight / scale), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)
    return quantized, scale


def apply(source: Path, target: Path, nodes: Sequence[str]) -> tuple[str, ...]:
    """Write target: source with each MatMul in nodes (constant 2-D weight) made per-token int8."""
    import onnx

    from layers.optimize import save_model

    model = onnx.load(str(source))
    for name in nodes:
        fold_input_scale(model.graph, name)
        rewrite(model.graph, name)
    save_model(model, target)
    return tuple(nodes)


def fold_input_scale(graph: Any, name: str) -> bool:
    """If MatMul `name`'s input is x * c (c constant per input channel, e.g. a smoothing scale) and
    feeds nothing else, fold c into the weight's rows and take x directly. Smoothing flattens outlier
    channels for one per-tensor scale; per-token scales do not need it, the unsmoothed weight
    quantizes better, and the Mul is gone. Return whether anything was folded."""
    from onnx import numpy_helper

    node = next(n for n in graph.node if n.name == name)
    inits = {init.name: init for init in graph.initializer}
    producer = next((n for n in graph.node if node.input[0] in n.output), None)
    consumers = [n for n in graph.node if node.input[0] in n.input]
    if producer is None or producer.op_type != "Mul" or len(consumers) != 1 or node.input[1] not in inits:
        return False
    constant = [i for i in producer.input if i in inits]
    data = [i for i in producer.input if i not in inits]
    if len(constant) != 1 or len(data) != 1:
        return False
    scale = numpy_helper.to_array(inits[constant[0]]).astype(np.float32)
    weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    if weight.ndim != 2 or scale.size != weight.shape[0] or scale.shape[-1] != weight.shape[0]:
        return False
    old = node.input[1]
    folded = f"{old}/unsmoothed"
    graph.initializer.append(numpy_helper.from_array(weight * scale.reshape(-1)[:, None], folded))
    node.input[0], node.input[1] = data[0], folded
    graph.node.remove(producer)
    for stale in (constant[0], old):
        if not any(stale in n.input for n in graph.node):
            graph.initializer.remove(inits[stale])
    return True


def rewrite(graph: Any, name: str) -> None:
    """Replace MatMul `name` in graph (in place) by its per-token int8 form."""
    import onnx
    from onnx import helper, numpy_helper

    matches = [n for n in graph.node if n.name == name and n.op_type == "MatMul"]
    inits = {init.name: init for init in graph.initializer}
    if len(matches) != 1 or matches[0].input[1] not in inits:
        raise ValueError(f"cannot make {name!r} per-token int8: it is not one MatMul with a constant weight")
    node = matches[0]
    weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
    if weight.ndim != 2:
        raise ValueError(f"{name}: per-token int8 needs a 2-D weight, got {weight.shape}")
    rows_in, cols = weight.shape
    quantized, column_scale = quantize_weight(weight)
    p = f"{name}/per_token"
    x, y = node.input[0], node.output[0]
    nodes: list[Any] = []

    def const(value: Any, suffix: str, dtype: Any) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=dtype), f"{p}/{suffix}"))
        return f"{p}/{suffix}"

    def op(op_type: str, inputs: list[str], suffix: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op_type, inputs, [f"{p}/{suffix}"], name=f"{p}/{suffix}", **attributes))
        return f"{p}/{suffix}"

    # Output shape: x's leading dimensions, then the weight's columns.
    shape = op("Shape", [x], "x_shape")
    lead = op("Slice", [shape, const([0], "zero", np.int64), const([-1], "last", np.int64)], "lead")
    y_shape = op("Concat", [lead, const([cols], "cols", np.int64)], "y_shape", axis=0)
    rows = op("Reshape", [x, const([-1, rows_in], "rows_shape", np.int64)], "x_rows")
    zero = const(0.0, "fzero", np.float32)
    high = op("Max", [op("ReduceMax", [rows], "row_max", axes=[1], keepdims=1), zero], "high")
    low = op("Min", [op("ReduceMin", [rows], "row_min", axes=[1], keepdims=1), zero], "low")
    spread = op(
        "Mul",
        [op("Sub", [high, low], "range"), const(1 / ACTIVATION_LEVELS, "inv_levels", np.float32)],
        "spread",
    )
    scale = op("Max", [spread, const(1e-12, "tiny", np.float32)], "scale")  # [rows, 1]
    zero_f = op("Round", [op("Div", [op("Neg", [low], "neg_low"), scale], "raw_zero")], "zero_f")
    flat = const([-1], "flat", np.int64)
    zero_u8 = op("Cast", [op("Reshape", [zero_f, flat], "zero_flat")], "zero_u8", to=onnx.TensorProto.UINT8)
    q = op("QuantizeLinear", [rows, op("Reshape", [scale, flat], "scale_flat"), zero_u8], "x_q", axis=0)
    product = op("MatMulInteger", [q, const(quantized, "w_int8", np.int8)], "acc")
    acc = op("Cast", [product], "acc_f", to=onnx.TensorProto.FLOAT)
    sums = const(quantized.astype(np.float32).sum(axis=0), "w_sums", np.float32)
    centred = op("Sub", [acc, op("Mul", [zero_f, sums], "correction")], "centred")
    by_row = op("Mul", [centred, scale], "by_row")
    out = op("Mul", [by_row, const(column_scale, "w_scale", np.float32)], "y_rows")
    nodes.append(helper.make_node("Reshape", [out, y_shape], [y], name=f"{p}/unrows"))
    position = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, new in enumerate(nodes):
        graph.node.insert(position + offset, new)
    if not any(node.input[1] in n.input for n in graph.node):
        graph.initializer.remove(inits[node.input[1]])
