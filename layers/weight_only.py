"""Weight-only int8: each large weight stored as int8 with one fp32 scale per output channel, and
turned back into fp32 by a Cast and a Mul in front of its consumers.

ONNX Runtime's constant folding evaluates that Cast and Mul once when the session is created (the
manifest says graph optimization `basic` for this candidate), so compute stays fp32 and accuracy is
within int8 rounding of the weights, at a quarter of the bytes on disk, in the layer and in the
download. What it costs is load time: the weights are computed at session creation instead of being
mapped from the data file (measured in the build's report and `preheat bench model`).
DequantizeLinear would say the same thing, but ORT's constant folding leaves DequantizeLinear alone
(it keeps QDQ pairs for its quantized kernels), so every run would dequantize every weight again.

Applied to the graph after offline optimization: an optimizer at EXTENDED would fold it back to fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MIN_ELEMENTS = 1024  # smaller tensors (biases, norms) stay fp32: they are few bytes and sensitive
LOAD_WITH = "basic"  # constant folding at session creation


def channel_axis(graph: Any, name: str, rank: int) -> int | None:
    """The output-channel axis of initializer `name` for every consumer, or None when a consumer is
    not one whose weight layout is known (the tensor then stays fp32)."""
    axes = set()
    for node in graph.node:
        for position, value in enumerate(node.input):
            if value != name:
                continue
            attrs = {a.name: a for a in node.attribute}
            if node.op_type in ("MatMul", "FusedMatMul", "Attention") and position == 1:
                axes.add(rank - 1)
            elif node.op_type in ("Gemm", "FusedGemm") and position == 1:
                axes.add(0 if attrs.get("transB") is not None and attrs["transB"].i else 1)
            elif node.op_type in ("Conv", "FusedConv", "NhwcFusedConv") and position == 1:
                axes.add(0)
            elif node.op_type == "ConvTranspose" and position == 1:
                axes.add(1)
            elif (
                node.op_type == "Gather"
                and position == 0
                and (attrs["axis"].i if "axis" in attrs else 0) == 0
            ):
                axes.add(0)  # an embedding table: one scale per row
            else:
                return None
    return axes.pop() if len(axes) == 1 else None


def quantize_tensor(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 in [-127, 127] with one scale per index of `axis` (kept as a broadcastable axis)."""
    reduce = tuple(i for i in range(values.ndim) if i != axis)
    scale = (np.maximum(np.abs(values).max(axis=reduce, keepdims=True), 1e-12) / 127.0).astype(np.float32)
    quantized = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
    return quantized, scale


def apply(source: Path, target: Path, *, min_elements: int = MIN_ELEMENTS) -> int:
    """Write target: source with every float32 weight of at least min_elements elements whose
    consumers' layout is known stored as int8 + scales. Return how many weights were converted."""
    import onnx
    from onnx import helper, numpy_helper

    from layers.optimize import save_model

    model = onnx.load(str(source))
    graph = model.graph
    graph_inputs = {value.name: value for value in graph.input}
    dequantize = []
    count = 0
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        axis = channel_axis(graph, init.name, len(init.dims))
        if axis is None:
            continue
        values = numpy_helper.to_array(init)
        quantized, scale = quantize_tensor(values, axis)
        name = init.name
        graph.initializer.remove(init)
        if name in graph_inputs:  # IR < 4 lists initializers as inputs too
            graph.input.remove(graph_inputs[name])
        graph.initializer.extend(
            [
                numpy_helper.from_array(quantized, f"{name}/int8"),
                numpy_helper.from_array(scale, f"{name}/scale"),
            ]
        )
        dequantize += [
            helper.make_node(
                "Cast", [f"{name}/int8"], [f"{name}/cast"], name=f"{name}/cast", to=onnx.TensorProto.FLOAT
            ),
            helper.make_node("Mul", [f"{name}/cast", f"{name}/scale"], [name], name=f"{name}/dequantize"),
        ]
        count += 1
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(dequantize + nodes)  # before every consumer: the graph stays topologically sorted
    save_model(model, target)
    return count
