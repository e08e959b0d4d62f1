"""Model directories the reliability runs need besides the real model: a small tensor model (NaN, Inf
and shapes need numeric inputs, which a text model does not take) and damaged copies of a model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

TENSOR_WIDTH = 4


def write_tensor_model(model_dir: Path, *, name: str = "scaler") -> Path:
    """y = x * scale + shift over [batch, 4] float32, written with its manifest (checksums)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from functions.inference.manifest import TensorSpec
    from layers.modeldir import write_manifest

    model_dir.mkdir(parents=True, exist_ok=True)
    scale = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
    shift = np.array([0.0, 1.0, -1.0, 0.25], dtype=np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", TENSOR_WIDTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", TENSOR_WIDTH])
    nodes = [helper.make_node("Mul", ["x", "scale"], ["xs"]), helper.make_node("Add", ["xs", "shift"], ["y"])]
    graph = helper.make_graph(
        nodes, name, [x], [y], [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(shift, "shift")]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model_dir / "model.onnx"))
    write_manifest(
        model_dir,
        name=name,
        version="1",
        task="tensor",
        model_file="model.onnx",
        inputs=(TensorSpec("x", "float32", ("batch", TENSOR_WIDTH)),),
        outputs=(TensorSpec("y", "float32", ("batch", TENSOR_WIDTH)),),
    )
    return model_dir


def damaged_copy(source: Path, target: Path, how: str = "truncate") -> str:
    """A copy of `source` with its largest model file truncated to half ("truncate") or with one byte
    flipped in the middle ("flip"); returns that file's name. Other files are hard links (the real
    model's weights are ~90 MB), falling back to copies across file systems."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    files: dict[str, dict[str, int]] = json.loads((source / "manifest.json").read_text())["files"]
    victim = max((name for name in files if name.startswith("model.onnx")), key=lambda n: files[n]["bytes"])
    for path in source.iterdir():
        if path.is_file():
            if path.name == victim:
                continue
            try:
                os.link(path, target / path.name)
            except OSError:
                shutil.copy2(path, target / path.name)
    data = bytearray((source / victim).read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        raise ValueError(f"how must be 'truncate' or 'flip', got {how!r}")
    (target / victim).write_bytes(bytes(data))
    return victim
