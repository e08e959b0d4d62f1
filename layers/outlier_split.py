"""Split a MatMul LLM.int8()-style: its few outlier input channels in fp32, the rest through int8.

A handful of input channels (the largest calibrated max |x|) carry the values that make one
per-tensor int8 scale too coarse for everything else. Y = X W is rewritten as
X[:, outliers] W[outliers] (fp32) + X[:, rest] W[rest] (quantized later like any MatMul).

Selecting channels with a Gather on the last axis costs more than the MatMul saves (ORT copies one
element at a time: 1.8 ms for [128, 1536] here). Instead the channels are reordered where they are
made: the producing MatMul's weight columns, and every per-channel constant of the channel-wise ops
between it and the split node (bias, GELU, smoothing scale), so the outliers come first and two
Slices (contiguous copies, ~0.01 ms) separate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Ops that act on each channel alone: reordering channels before them reorders their output alike.
CHANNELWISE = frozenset(
    {"Add", "Sub", "Mul", "Div", "BiasGelu", "Gelu", "FastGelu", "Relu", "Tanh", "Sigmoid", "Erf", "Identity"}
)


def outlier_order(channel_max: np.ndarray, channels: int) -> np.ndarray:
    """A permutation of the input channels: the `channels` largest maxima first, each part in
    ascending channel order."""
    if not 0 < channels < len(channel_max):
        raise ValueError(f"split needs 0 < channels < {len(channel_max)} input channels, got {channels}")
    largest = np.argsort(-channel_max, kind="stable")[:channels]
    outliers = np.sort(largest)
    rest = np.setdiff1d(np.arange(len(channel_max)), outliers)
    return np.concatenate([outliers, rest]).astype(np.int64)


def split(
    source: Path, target: Path, nodes: Sequence[str], *, channels: int, feeds: Sequence[dict[str, np.ndarray]]
) -> tuple[str, ...]:
    """Write target: source with each MatMul in nodes split; return the names of the fp32 halves
    (the ones to keep out of int8). Channel maxima come from running source on feeds."""
    import onnx

    from layers import calibrate
    from layers.optimize import save_model

    activations = calibrate.capture(source, feeds)
    model = onnx.load(str(source))
    by_node = {t.node: t for t in activations.targets}
    fp32_halves = []
    for name in nodes:
        t = by_node.get(name)
        if t is None or t.op_type != "MatMul":
            raise ValueError(f"cannot split {name!r}: it is not a MatMul with a constant weight in {source}")
        order = outlier_order(activations.channel_max(t.activation), channels)
        fp32_halves.append(split_node(model.graph, name, order, channels))
    save_model(model, target)
    return tuple(fp32_halves)


def split_node(graph: Any, name: str, order: np.ndarray, channels: int) -> str:
    """Split MatMul `name` in graph (in place) with input channels reordered by order, the first
    `channels` of them in fp32; return the fp32 MatMul's name."""
    from onnx import helper, numpy_helper

    node = next(n for n in graph.node if n.name == name)
    inits = {init.name: init for init in graph.initializer}
    weight = numpy_helper.to_array(inits[node.input[1]])
    if weight.ndim != 2 or weight.shape[0] != len(order):
        raise ValueError(f"{name}: weight {weight.shape} does not match {len(order)} input channels")
    _reorder_producers(graph, node.input[0], order)
    reordered = weight[order]
    prefix = f"{name}/split"
    rows = len(order)
    graph.initializer.extend(
        [
            numpy_helper.from_array(reordered[:channels], f"{prefix}/w_outliers"),
            numpy_helper.from_array(reordered[channels:], f"{prefix}/w_rest"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), f"{prefix}/zero"),
            numpy_helper.from_array(np.array([channels], dtype=np.int64), f"{prefix}/cut"),
            numpy_helper.from_array(np.array([rows], dtype=np.int64), f"{prefix}/end"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{prefix}/axis"),
        ]
    )
    x, y, fp32_name = node.input[0], node.output[0], f"{name}/outliers"
    replacement = [
        helper.make_node(
            "Slice", [x, f"{prefix}/zero", f"{prefix}/cut", f"{prefix}/axis"], [f"{prefix}/x_outliers"]
        ),
        helper.make_node(
            "Slice", [x, f"{prefix}/cut", f"{prefix}/end", f"{prefix}/axis"], [f"{prefix}/x_rest"]
        ),
        helper.make_node(
            "MatMul",
            [f"{prefix}/x_outliers", f"{prefix}/w_outliers"],
            [f"{prefix}/y_outliers"],
            name=fp32_name,
        ),
        helper.make_node(
            "MatMul", [f"{prefix}/x_rest", f"{prefix}/w_rest"], [f"{prefix}/y_rest"], name=f"{name}/rest"
        ),
        helper.make_node("Add", [f"{prefix}/y_outliers", f"{prefix}/y_rest"], [y], name=f"{name}/sum"),
    ]
    position = list(graph.node).index(node)
    graph.node.remove(node)
    for offset, new in enumerate(replacement):
        graph.node.insert(position + offset, new)
    if not _used(graph, node.input[1]):
        graph.initializer.remove(inits[node.input[1]])
    return fp32_name


def _reorder_producers(graph: Any, tensor: str, order: np.ndarray) -> None:
    """Reorder the channels (last axis) of tensor where it is made: walk back through channel-wise
    ops to the MatMul that produces them, reordering per-channel constants and the weight's columns.
    Every tensor on the way must feed only the next op, or something else would see the new order."""
    from onnx import numpy_helper

    inits = {init.name: init for init in graph.initializer}
    producers = {out: n for n in graph.node for out in n.output}
    width = len(order)
    while True:
        consumers = [n for n in graph.node if tensor in n.input]
        outputs = {o.name for o in graph.output}
        producer = producers.get(tensor)
        if len(consumers) != 1 or tensor in outputs or producer is None:
            raise ValueError(
                f"cannot reorder the channels of {tensor!r}: it must be made by a MatMul (through "
                "channel-wise ops) and feed one node only"
            )
        if producer.op_type == "MatMul" and producer.input[1] in inits:
            weight = numpy_helper.to_array(inits[producer.input[1]])
            if weight.ndim != 2 or weight.shape[1] != width:
                raise ValueError(f"{producer.name}: weight {weight.shape} does not make {width} channels")
            _replace(graph, producer, 1, weight[:, order])
            return
        if producer.op_type not in CHANNELWISE:
            raise ValueError(f"cannot reorder channels through {producer.op_type} {producer.name!r}")
        data = [i for i, name in enumerate(producer.input) if name and name not in inits]
        if len(data) != 1:
            raise ValueError(f"{producer.name}: expected one non-constant input, found {len(data)}")
        for i, name in enumerate(producer.input):
            if i == data[0] or not name:
                continue
            constant = numpy_helper.to_array(inits[name])
            if constant.size == 1:
                continue  # a scalar broadcasts to every channel alike
            if constant.shape[-1] != width or constant.size != width:
                raise ValueError(f"{producer.name}: constant {name!r} {constant.shape} is not per-channel")
            _replace(graph, producer, i, constant[..., order])
        tensor = producer.input[data[0]]


def _replace(graph: Any, node: Any, index: int, value: np.ndarray) -> None:
    """Give node's input `index` a new initializer with value (the old one may be shared)."""
    from onnx import numpy_helper

    name = f"{node.input[index]}/reordered/{node.name}"
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
    old = node.input[index]
    node.input[index] = name
    if not _used(graph, old):
        graph.initializer.remove(next(i for i in graph.initializer if i.name == old))


def _used(graph: Any, name: str) -> bool:
    return any(name in n.input for n in graph.node) or any(o.name == name for o in graph.output)
