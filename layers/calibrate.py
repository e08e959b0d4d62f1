"""Activation statistics on calibration text, and what they are used for: smoothing activation
outliers into weights, and ranking quantizable nodes by how much error int8 adds.

Dynamic int8 quantizes each activation tensor with one scale. A few hidden channels of BERT-family
models carry values far larger than the rest, so that one scale wastes most of the 8 bits on them.
Smoothing (the SmoothQuant idea) divides each input channel x_j by s_j = max|x_j|^a / max|W_j|^(1-a)
and multiplies row j of the weight by s_j: the product is unchanged in fp32, and the activations
become flat enough to quantize. The division is a Mul node in front of the quantized node (its input
also feeds a residual connection, so it cannot be folded into the previous LayerNorm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

QUANTIZABLE = ("MatMul", "Attention")  # ops with a constant weight as input 1


@dataclass(frozen=True)
class QuantizableNode:
    """A MatMul or Attention node whose input 1 is a constant weight: what smoothing and int8 act on."""
    node: str
    op_type: str
    activation: str  # the node's input 0
    weight: str  # initializer name of input 1


@dataclass(frozen=True)
class Activations:
    """Per-node inputs captured on calibration text, one array per text ([tokens, channels])."""

    targets: tuple[QuantizableNode, ...]
    samples: dict[str, list[np.ndarray]]  # activation name -> per-text arrays

    def channel_max(self, activation: str) -> np.ndarray:
        maxima: np.ndarray = np.max([np.abs(x).max(axis=0) for x in self.samples[activation]], axis=0)
        return maxima


def targets(graph: Any) -> tuple[QuantizableNode, ...]:
    weights = {init.name for init in graph.initializer}
    return tuple(
        QuantizableNode(node.name, node.op_type, node.input[0], node.input[1])
        for node in graph.node
        if node.op_type in QUANTIZABLE and len(node.input) > 1 and node.input[1] in weights
    )


def capture(model: Path, feeds: Sequence[dict[str, np.ndarray]]) -> Activations:
    """Run model on each feed with every target's input exposed as an output."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(model))
    found = targets(graph.graph)
    names = sorted({t.activation for t in found})
    existing = {o.name for o in graph.graph.output}
    for name in names:
        if name not in existing:
            graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    samples: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            samples[name].append(value.reshape(-1, value.shape[-1]))
    return Activations(found, samples)


def smoothing_scales(channel_max: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    act = np.maximum(channel_max.astype(np.float64), 1e-5)
    wmax = np.maximum(np.abs(weight).max(axis=1).astype(np.float64), 1e-5)
    scales = act**alpha / wmax ** (1.0 - alpha)
    clipped: np.ndarray = np.clip(scales, 1e-2, 1e3).astype(np.float32)
    return clipped


Alphas = float | Mapping[str, float]  # one alpha for every node, or per node (absent: not smoothed)


def alpha_for(alphas: Alphas | None, node: str) -> float | None:
    if alphas is None or isinstance(alphas, float | int):
        return alphas
    return alphas.get(node)


def smooth(source: Path, target: Path, activations: Activations, alpha: Alphas) -> int:
    """Write target = source with target nodes' input channels smoothed; return how many."""
    import onnx
    from onnx import numpy_helper

    from layers.optimize import save_model

    model = onnx.load(str(source))
    inits = {init.name: init for init in model.graph.initializer}
    by_node = {t.node: t for t in activations.targets}
    nodes = []
    count = 0
    for node in model.graph.node:
        t = by_node.get(node.name)
        node_alpha = alpha_for(alpha, node.name)
        if (
            t is not None
            and node_alpha is not None
            and node.op_type == t.op_type
            and t.activation in activations.samples
        ):
            weight = numpy_helper.to_array(inits[t.weight])
            scales = smoothing_scales(activations.channel_max(t.activation), weight, node_alpha)
            inits[t.weight].CopyFrom(
                numpy_helper.from_array((weight * scales[:, None]).astype(np.float32), t.weight)
            )
            inverse = f"{node.name}/smooth_inverse"
            model.graph.initializer.append(
                numpy_helper.from_array((1.0 / scales).astype(np.float32), inverse)
            )
            smoothed = f"{node.name}/smoothed_input"
            nodes.append(
                onnx.helper.make_node("Mul", [t.activation, inverse], [smoothed], name=f"{node.name}/smooth")
            )
            node.input[0] = smoothed
            count += 1
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    save_model(model, target)
    return count


def fake_quantized_weight(weight: np.ndarray, *, reduce_range: bool) -> np.ndarray:
    """ORT's dynamic int8 weights: symmetric per output channel, 7-bit with reduce_range."""
    qmax = 63.0 if reduce_range else 127.0
    scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / qmax
    quantized: np.ndarray = (np.clip(np.round(weight / scale), -qmax - 1, qmax) * scale).astype(np.float32)
    return quantized


Feed = dict[str, np.ndarray]


def cosine_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """1 - mean cosine of matching rows."""
    ref = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    cand = candidate / np.maximum(np.linalg.norm(candidate, axis=1, keepdims=True), 1e-12)
    return float(1.0 - (ref * cand).sum(axis=1).mean())


def relative_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    """||candidate - reference|| / ||reference|| over all rows: for outputs too narrow for a cosine
    (a cross-encoder's one score)."""
    return float(np.linalg.norm(candidate - reference) / max(float(np.linalg.norm(reference)), 1e-12))


@dataclass(frozen=True)
class Probe:
    """What the sensitivity ranking compares: one row per (batch-1, unpadded) feed computed from a
    session's outputs, and the error of a trial's rows against the fp32 ones. Each task's recipe
    (layers/tasks/) says what its answer is: pooled token states, logits, every output."""

    rows: Callable[[Any, Sequence[Feed]], np.ndarray]
    error: Callable[[np.ndarray, np.ndarray], float] = cosine_error


def output_rows(outputs: Sequence[str] | None = None) -> Callable[[Any, Sequence[Feed]], np.ndarray]:
    """Rows made of the named outputs (all, when None), each flattened and concatenated per feed."""

    def rows(session: Any, feeds: Sequence[Feed]) -> np.ndarray:
        names = list(outputs) if outputs is not None else [o.name for o in session.get_outputs()]
        accepted = {i.name for i in session.get_inputs()}
        out = []
        for feed in feeds:
            values = session.run(names, {k: v for k, v in feed.items() if k in accepted})
            out.append(np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values]))
        return np.stack(out)

    return rows


def rank_sensitive(
    model: Path,
    activations: Activations,
    feeds: Sequence[dict[str, np.ndarray]],
    *,
    probe: Probe,
    alpha: Alphas | None,
    reduce_range: bool,
    op_types: Sequence[str] = ("MatMul",),
) -> list[tuple[str, float]]:
    """Nodes of op_types in model (the fused fp32 graph), most sensitive to dynamic int8 first.

    Measured, not estimated: for one node at a time, the graph gets that node's input through
    DynamicQuantizeLinear -> DequantizeLinear and its weight fake-quantized (after smoothing with
    alpha, when given), and the score is the probe's error of the trial's answers against fp32 on
    the calibration feeds. The held-out data is never used here."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    base = onnx.load(str(model))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    options.intra_op_num_threads = 2

    def session_for(proto: Any) -> Any:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])

    reference = probe.rows(session_for(base), feeds)
    inits = {init.name: i for i, init in enumerate(base.graph.initializer)}
    node_index = {node.name: i for i, node in enumerate(base.graph.node)}
    scores = []
    for t in activations.targets:
        if t.op_type not in op_types or t.activation not in activations.samples:
            continue
        trial = onnx.ModelProto()
        trial.CopyFrom(base)
        weight = numpy_helper.to_array(base.graph.initializer[inits[t.weight]]).astype(np.float32)
        prefix = f"{t.node}/probe"
        new_nodes = []
        source = t.activation
        node_alpha = alpha_for(alpha, t.node)
        if node_alpha is not None:
            scales = smoothing_scales(activations.channel_max(t.activation), weight, node_alpha)
            weight = weight * scales[:, None]
            trial.graph.initializer.append(
                numpy_helper.from_array((1.0 / scales).astype(np.float32), f"{prefix}/inv")
            )
            new_nodes.append(helper.make_node("Mul", [source, f"{prefix}/inv"], [f"{prefix}/smoothed"]))
            source = f"{prefix}/smoothed"
        trial.graph.initializer[inits[t.weight]].CopyFrom(
            numpy_helper.from_array(fake_quantized_weight(weight, reduce_range=reduce_range), t.weight)
        )
        new_nodes += [
            helper.make_node(
                "DynamicQuantizeLinear", [source], [f"{prefix}/q", f"{prefix}/s", f"{prefix}/z"]
            ),
            helper.make_node(
                "DequantizeLinear", [f"{prefix}/q", f"{prefix}/s", f"{prefix}/z"], [f"{prefix}/dq"]
            ),
        ]
        position = node_index[t.node]
        trial.graph.node[position].input[0] = f"{prefix}/dq"
        for offset, node in enumerate(new_nodes):
            trial.graph.node.insert(position + offset, node)
        candidate = probe.rows(session_for(trial), feeds)
        scores.append((t.node, probe.error(reference, candidate)))
    return sorted(scores, key=lambda item: item[1], reverse=True)


def local_error(
    samples: Sequence[np.ndarray], weight: np.ndarray, alpha: float | None, *, reduce_range: bool
) -> float:
    """||XqWq - XW|| / ||XW|| for one node under ORT's dynamic int8 scheme, emulated in numpy: uint8
    asymmetric activations with one scale per call (per text), int8 per-channel weights. Comparable
    across alphas for one node (the downstream effect is the same), not across nodes."""
    w = weight.astype(np.float32)
    xs = [x.astype(np.float32) for x in samples]
    if alpha is not None:
        scales = smoothing_scales(np.max([np.abs(x).max(axis=0) for x in xs], axis=0), w, alpha)
        w = w * scales[:, None]
        xs = [x / scales for x in xs]
    wq = fake_quantized_weight(w, reduce_range=reduce_range)
    quantized = []
    for x in xs:
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        step = (hi - lo) / 255.0 or 1.0
        zero = np.round(-lo / step)
        quantized.append((np.clip(np.round(x / step) + zero, 0, 255) - zero) * step)
    exact = np.concatenate(xs) @ w
    approx = np.concatenate(quantized).astype(np.float32) @ wq
    return float(np.linalg.norm(approx - exact) / max(float(np.linalg.norm(exact)), 1e-12))


def choose_alphas(
    model: Path,
    activations: Activations,
    *,
    grid: Sequence[float],
    reduce_range: bool,
    min_gain: float = 0.15,
    texts: int = 64,
) -> dict[str, float]:
    """Per node, the alpha in grid with the lowest emulated int8 error; a node is left unsmoothed
    (and gets no Mul) unless smoothing cuts its error by at least min_gain."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model)).graph
    inits = {init.name: init for init in graph.initializer}
    chosen = {}
    for t in activations.targets:
        if t.activation not in activations.samples:
            continue
        weight = numpy_helper.to_array(inits[t.weight])
        samples = activations.samples[t.activation][:texts]
        plain = local_error(samples, weight, None, reduce_range=reduce_range)
        best_alpha, best = min(
            ((a, local_error(samples, weight, a, reduce_range=reduce_range)) for a in grid),
            key=lambda item: item[1],
        )
        if best < plain * (1.0 - min_gain):
            chosen[t.node] = float(best_alpha)
    return chosen
