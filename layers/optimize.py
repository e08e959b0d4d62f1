"""Offline graph optimization, so that serving can load with graph optimization disabled.

Transformer encoders get ONNX Runtime's transformer fusions (Attention, BiasGelu, LayerNormalization)
with the head count and width from the model's own config; any other model gets ORT's own
session-level optimizations saved to file. Either way the
final save is at the EXTENDED level: fusions into CPU contrib ops that exist on every CPU Lambda runs
(x86_64 and arm64). The ALL level adds layout transformations specific to the build machine's
vector width, which is why it is never saved.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PORTABLE_LEVEL = "extended"
# ORT's CPU SkipLayerNormalization kernel took 3.9 ms for MiniLM's 12 at 128 tokens, 1 thread, where
# Add + LayerNormalization took 1.3 ms (measured here): neither the BERT fusions nor the saved
# session-level optimization may fuse them.
SLOWER_FUSIONS = ("SkipLayerNormFusion",)


@contextmanager
def quiet() -> Iterator[None]:
    """ORT's Python tools log every node at INFO and warn about pre-processing; keep the build readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def data_file(model: Path) -> Path:
    return model.with_name(model.name + ".data")


def remove_model(model: Path) -> None:
    """ONNX appends to an existing external data file: always start from nothing."""
    for path in (model, data_file(model)):
        path.unlink(missing_ok=True)


def save_model(graph: Any, target: Path) -> None:
    """Save with every initializer over 1 KB in one external data file beside the graph."""
    import onnx

    remove_model(target)
    onnx.save_model(
        graph,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_file(target).name,
        size_threshold=1024,
    )


def copy_model(source: Path, target: Path) -> None:
    import onnx

    save_model(onnx.load(str(source)), target)


def fuse_transformer(
    source: Path, target: Path, model_type: str, num_heads: int, hidden_size: int
) -> dict[str, int]:
    """Apply the transformer optimizer's fusions for model_type (one of its MODEL_TYPES, e.g. "bert"
    for BERT, RoBERTa, XLM-R, DistilBERT; python-level only: no ORT session, so nothing
    machine-specific) and return how many nodes of each fused type the graph now has.

    The embedding stays unfused: its lookup table is quantized by row later, which the fused
    EmbedLayerNormalization would not allow."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(model_type)
    options.enable_embed_layer_norm = False
    options.enable_skip_layer_norm = False  # see SLOWER_FUSIONS; Attention still fuses without it
    with quiet():
        optimized = optimize_model(
            str(source),
            model_type=model_type,
            num_heads=num_heads,
            hidden_size=hidden_size,
            opt_level=0,
            optimization_options=options,
        )
    stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    remove_model(target)
    # save_model_to_file also declares the com.microsoft opset the fused contrib ops need.
    optimized.save_model_to_file(str(target), use_external_data_format=True, all_tensors_to_one_file=True)
    if not data_file(target).is_file():
        raise SystemExit(f"the fused model's weights were not written to {data_file(target)}")
    return stats


def save_optimized(source: Path, target: Path, level: str = PORTABLE_LEVEL) -> None:
    """Let ONNX Runtime optimize source at `level` and write the result (weights external) to target."""
    import onnxruntime as ort

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    if level not in levels:
        raise ValueError(
            f"offline optimization level must be one of {', '.join(levels)} (portable), not {level!r}"
        )
    remove_model(target)
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", data_file(target).name
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    options.log_severity_level = 3
    ort.InferenceSession(
        str(source), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOWER_FUSIONS)
    )
    if not target.is_file():
        raise SystemExit(f"ONNX Runtime did not write the optimized model {target}")


def save_ort_format(source: Path, target: Path) -> None:
    """Write source (already optimized offline) in ONNX Runtime's own format: one flatbuffer with the
    weights inside, loaded without protobuf parsing. Measured here it does not beat ONNX with
    external data on x86 Python, so it is opt-in (`preheat build --ort-format`)."""
    import onnxruntime as ort

    target.unlink(missing_ok=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    if not target.is_file():
        raise SystemExit(f"ONNX Runtime did not write the ORT-format model {target}")
