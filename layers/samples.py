"""The data a build calibrates and gates on: `--sample FILE` or, without one, the built-in text sets
(text tasks) or inputs drawn from the graph's declared shapes and dtypes (tensor).

A sample is split once, by a fixed shuffle: HELD_OUT of it is the gate's and never calibrates, the
rest calibrates. Every problem with a sample or a shape is a SpecError naming the line, the array or
the axis, and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import TensorSpec
from layers import paths, textdata
from layers.spec import SpecError

HELD_OUT = 0.5
MIN_GATE = 4  # items (texts, pairs or tensor samples) the gate needs at least
DRAWN_SAMPLES = 32  # tensor inputs drawn per set (gate, calibration) when no sample is given
Item = str | tuple[str, str]


@dataclass(frozen=True)
class Split:
    """Gate and calibration items, and what the report and manifest say about where they came from."""

    gate: tuple[Any, ...]
    calibration: tuple[Any, ...]
    description: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        d = self.description
        if d["source"] == "sample":
            return (
                f"--sample {d['file']}: {d['items']} {d['unit']}, {d['gate']} ({d['held_out_share']:.0%}) held out "
                f"for the gate, {d['calibration']} for calibration (a fixed shuffle)"
            )
        if d["source"] == "built-in":
            return (
                f"built-in text: {d['gate']} held-out {d['unit']} from {d['gate_file']} for the gate (never "
                f"calibrated on), {d['calibration']} from {d['calibration_file']} for calibration"
            )
        inputs = "; ".join(f"{k} {v}" for k, v in d["inputs"].items())
        return (
            f"drawn from the graph's declared shapes and dtypes: {d['gate']} samples for the gate, "
            f"{d['calibration']} for calibration (another seed): {inputs}"
        )


def _split(items: Sequence[Any], description: dict[str, Any]) -> Split:
    order = np.random.default_rng(0).permutation(len(items))
    cut = max(MIN_GATE, round(len(items) * HELD_OUT))
    gate = tuple(items[i] for i in sorted(order[:cut]))
    calibration = tuple(items[i] for i in sorted(order[cut:]))
    return Split(gate, calibration, {**description, "gate": len(gate), "calibration": len(calibration),
                                     "held_out_share": len(gate) / len(items)})  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- text -----------------------------------------------------------------------------------------


def text_split(sample: Path | None, *, pairs: bool) -> Split:
    if sample is not None:
        items = read_jsonl(sample, pairs=pairs)
        return _split(items, {"source": "sample", "file": str(sample), "sha256": _digest(sample),
                              "unit": "pairs" if pairs else "texts", "items": len(items)})  # fmt: skip
    heldout, calibration = textdata.heldout(), textdata.calibration()
    gate: tuple[Item, ...] = builtin_pairs(heldout) if pairs else heldout
    calib: tuple[Item, ...] = builtin_pairs(calibration) if pairs else calibration
    return Split(gate, calib, {
        "source": "built-in", "unit": "pairs" if pairs else "texts", "gate": len(gate), "calibration": len(calib),
        "gate_file": paths.HELDOUT_TEXT.relative_to(paths.ROOT).as_posix(),
        "calibration_file": paths.CALIBRATION_TEXT.relative_to(paths.ROOT).as_posix(),
        "sha256": _digest(paths.HELDOUT_TEXT), "held_out_share": 1.0,
    })  # fmt: skip


def builtin_pairs(texts: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Pairs from a text set grouped loosely by topic: each text with the next (often related, as
    a question and its answer) and with one far away (unrelated), so scores span relevance."""
    n = len(texts)
    out = []
    for i in range(0, n - 1, 2):
        out.append((texts[i], texts[i + 1]))
        out.append((texts[i], texts[(i + n // 2 + 1) % n]))
    return tuple(out)


def read_jsonl(path: Path, *, pairs: bool) -> list[Item]:
    """JSON lines: a string per line (single-text models), or [text, text_pair] (pair models)."""
    if not path.is_file():
        raise SpecError(f"--sample {path} does not exist")
    if path.suffix == ".npz":
        raise SpecError(f"--sample {path} is an .npz of arrays: a text model takes JSON lines of texts")
    items: list[Item] = []
    want = '["text", "text pair"]' if pairs else '"a text"'
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpecError(
            f"--sample {path} is not UTF-8 text: it must be JSON lines, one {want} per line"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise SpecError(f"--sample {path} line {number} is not JSON: each line must be {want}") from None
        if pairs:
            if not (
                isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)
            ):
                shape = "a single text" if isinstance(value, str) else json.dumps(value)[:60]
                raise SpecError(
                    f"--sample {path} line {number} is {shape}: this model takes pairs, one "
                    f'["text", "text pair"] per line'
                )
            items.append((value[0], value[1]))
        else:
            if not (isinstance(value, str) and value):
                shape = "a pair" if isinstance(value, list) else json.dumps(value)[:60]
                raise SpecError(
                    f"--sample {path} line {number} is {shape}: this model takes single texts, one "
                    '"a text" per line (pairs are for cross-encoders: --pairs)'
                )
            items.append(value)
    if len(items) < 2 * MIN_GATE:
        raise SpecError(
            f"--sample {path} has {len(items)} items: the gate and calibration need at least {2 * MIN_GATE}"
        )
    return items


# --- tensors --------------------------------------------------------------------------------------

_DIMS = re.compile(r"^\d+([,x]\d+)*$")


def parse_shapes(values: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`NAME=DIMS` flags: an input's whole shape (`image=1,3,224,224` or `1x3x224x224`) or one named
    dynamic dimension (`height=224`)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.partition("=")
        if not sep or not name or not _DIMS.match(dims.strip()):
            raise SpecError(f"--shape {value!r} must be NAME=DIMS, e.g. image=1,3,224,224 or height=224")
        shapes[name.strip()] = tuple(int(d) for d in re.split("[,x]", dims.strip()))
        if any(d < 1 for d in shapes[name.strip()]):
            raise SpecError(f"--shape {value!r}: every dimension must be at least 1")
    return shapes


def resolve_shapes(
    inputs: Sequence[TensorSpec], shapes: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Each input's shape for one sample: axis 0, when dynamic, is the batch (1); every other dynamic
    axis must be given with --shape, by input or by the dimension's name."""
    names = {spec.name for spec in inputs}
    dims = {d for spec in inputs for d in spec.shape if isinstance(d, str)}
    unknown = sorted(set(shapes) - names - dims)
    if unknown:
        raise SpecError(
            f"--shape {unknown[0]}: no input or dynamic dimension has that name "
            f"(inputs: {', '.join(sorted(names))}; dynamic dimensions: {', '.join(sorted(dims)) or 'none'})"
        )
    resolved = {}
    for spec in inputs:
        given = shapes.get(spec.name)
        if given is not None and len(given) != len(spec.shape):
            raise SpecError(
                f"--shape {spec.name}={','.join(map(str, given))} has {len(given)} dimensions, the input has "
                f"{len(spec.shape)} ({_show(spec.shape)})"
            )
        out = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int):
                if given is not None and given[axis] != dim and axis > 0:
                    raise SpecError(
                        f"--shape {spec.name}: axis {axis} is fixed at {dim} in the graph, not {given[axis]}"
                    )
                out.append(dim)
            elif axis == 0:
                out.append(1)
            elif given is not None:
                out.append(given[axis])
            elif dim in shapes and len(shapes[dim]) == 1:
                out.append(shapes[dim][0])
            else:
                example = ",".join(
                    str(d) if isinstance(d, int) else ("1" if i == 0 else d.upper())
                    for i, d in enumerate(spec.shape)
                )
                raise SpecError(
                    f"input {spec.name!r} axis {axis} ({dim!r}) is dynamic: give its size with "
                    f"--shape {spec.name}={example} or --shape {dim}=N"
                )
        resolved[spec.name] = tuple(out)
    return resolved


def _show(shape: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def integer_bounds(model: Path, inputs: Sequence[TensorSpec]) -> dict[str, tuple[int, int, str]]:
    """A valid range [low, high) for each integer input, and why: indices into a constant table (a
    Gather, followed through shape-only ops like Cast, Reshape, Unsqueeze) must stay below its rows;
    OneHot indices below its depth; 8-bit inputs (pixels) take their whole range; others [0, 2)
    (masks and flags; a --sample gives real values)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    constants = {init.name: init for init in graph.initializer}
    passthrough = (
        "Cast",
        "Reshape",
        "Unsqueeze",
        "Squeeze",
        "Flatten",
        "Identity",
        "Expand",
        "Transpose",
        "Concat",
    )
    bounds: dict[str, tuple[int, int, str]] = {}
    for spec in inputs:
        if not spec.dtype.startswith(("int", "uint")) and spec.dtype != "bool":
            continue
        limits: list[tuple[int, str]] = []
        frontier, seen = [spec.name], set()
        while frontier:
            value = frontier.pop()
            if value in seen:
                continue
            seen.add(value)
            for node in graph.node:
                if value not in node.input:
                    continue
                position = list(node.input).index(value)
                attrs = {a.name: a for a in node.attribute}
                if node.op_type == "Gather" and position == 1 and node.input[0] in shapes:
                    axis = attrs["axis"].i if "axis" in attrs else 0
                    rows = shapes[node.input[0]][axis]
                    limits.append((rows, f"rows of table {node.input[0]!r}"))
                elif node.op_type == "OneHot" and position == 0 and node.input[1] in constants:
                    depth = int(numpy_helper.to_array(constants[node.input[1]]).reshape(-1)[0])
                    limits.append((depth, "OneHot depth"))
                elif node.op_type in passthrough and position == 0:
                    frontier.extend(node.output)
        if spec.dtype == "bool":
            bounds[spec.name] = (0, 2, "booleans")
        elif limits:
            high, why = min(limits)
            bounds[spec.name] = (0, high, why)
        elif spec.dtype in ("uint8", "int8"):
            info = np.iinfo(spec.dtype)
            bounds[spec.name] = (int(info.min), int(info.max) + 1, f"the whole {spec.dtype} range")
        else:
            bounds[spec.name] = (0, 2, "no lookup table found: give --sample for real values")
    return bounds


def tensor_split(
    model: Path, inputs: Sequence[TensorSpec], sample: Path | None, shapes: dict[str, tuple[int, ...]]
) -> Split:
    """Gate and calibration samples, each a feed of batch 1 (or the graph's fixed batch)."""
    if sample is not None:
        feeds = read_npz(sample, inputs)
        return _split(feeds, {"source": "sample", "file": str(sample), "sha256": _digest(sample),
                              "unit": "samples", "items": len(feeds)})  # fmt: skip
    resolved = resolve_shapes(inputs, shapes)
    bounds = integer_bounds(model, inputs)
    described = {}
    for spec in inputs:
        kind = "normal(0, 1)" if spec.name not in bounds else (
            f"integers in [{bounds[spec.name][0]}, {bounds[spec.name][1]}) ({bounds[spec.name][2]})")  # fmt: skip
        described[spec.name] = f"{spec.dtype} {_show(resolved[spec.name])} {kind}"

    def draw(seed: int) -> tuple[dict[str, np.ndarray], ...]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(DRAWN_SAMPLES):
            feed = {}
            for spec in inputs:
                shape = resolved[spec.name]
                if spec.name in bounds:
                    low, high, _ = bounds[spec.name]
                    feed[spec.name] = rng.integers(low, high, size=shape).astype(spec.dtype)
                else:
                    feed[spec.name] = rng.standard_normal(size=shape).astype(spec.dtype)
            out.append(feed)
        return tuple(out)

    gate, calibration = draw(1), draw(2)
    return Split(gate, calibration, {"source": "drawn", "unit": "samples", "gate": len(gate),
                                     "calibration": len(calibration), "held_out_share": 0.5,
                                     "inputs": described, "shapes": {k: list(v) for k, v in resolved.items()}})  # fmt: skip


def read_npz(path: Path, inputs: Sequence[TensorSpec]) -> list[dict[str, np.ndarray]]:
    """An .npz with one array per graph input, samples along axis 0 (for an input whose axis 0 is
    fixed at k, consecutive groups of k rows make one sample)."""
    if not path.is_file():
        raise SpecError(f"--sample {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as exc:  # zipfile, pickle and format errors alike
        raise SpecError(
            f"--sample {path} is not an .npz of arrays (numpy.savez): {type(exc).__name__}: {exc}"
        ) from None
    names = [spec.name for spec in inputs]
    missing = [n for n in names if n not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else []
        )
        raise SpecError(
            f"--sample {path} must hold one array per input ({', '.join(names)}): {'; '.join(problems)}"
        )
    counts = {}
    for spec in inputs:
        array = arrays[spec.name]
        if array.ndim != len(spec.shape):
            raise SpecError(
                f"--sample {path}: array {spec.name!r} has shape {list(array.shape)}, the input is "
                f"{_show(spec.shape)} ({len(spec.shape)} dimensions, samples along the first)"
            )
        for axis, dim in enumerate(spec.shape[1:], start=1):
            if isinstance(dim, int) and array.shape[axis] != dim:
                raise SpecError(
                    f"--sample {path}: array {spec.name!r} axis {axis} is {array.shape[axis]}, the input's is {dim} "
                    f"(input shape {_show(spec.shape)}, array {list(array.shape)})"
                )
        if not np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
            raise SpecError(
                f"--sample {path}: array {spec.name!r} is {array.dtype}, the input takes {spec.dtype}"
            )
        arrays[spec.name] = array.astype(spec.dtype, copy=False)
        group = spec.shape[0] if isinstance(spec.shape[0], int) else 1
        if len(array) % group:
            raise SpecError(
                f"--sample {path}: array {spec.name!r} has {len(array)} rows, not a multiple of the input's fixed batch {group}"
            )
        counts[spec.name] = len(array) // group
    if len(set(counts.values())) != 1:
        raise SpecError(f"--sample {path}: the arrays hold different numbers of samples ({counts})")
    total = next(iter(counts.values()))
    if total < 2 * MIN_GATE:
        raise SpecError(
            f"--sample {path} holds {total} samples: the gate and calibration need at least {2 * MIN_GATE}"
        )
    feeds = []
    for i in range(total):
        feed = {}
        for spec in inputs:
            group = spec.shape[0] if isinstance(spec.shape[0], int) else 1
            feed[spec.name] = arrays[spec.name][i * group : (i + 1) * group]
        feeds.append(feed)
    return feeds
