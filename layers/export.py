"""Export a model to the ONNX file the fp32 directory holds: dynamic axes, weights in an external data
file (ONNX Runtime maps it instead of copying: the largest single cold-start lever measured here).

Hugging Face directories go through torch (the old TorchScript exporter, opset 17, eager attention,
whose MatMul/Softmax pattern ONNX Runtime's fusions recognise): `AutoModel` for encoders,
`AutoModelForSequenceClassification` for classifiers and cross-encoders. The graph takes the inputs
the model's own forward signature names (`token_type_ids` only where the config has more than one
token type), and the export is checked against PyTorch on inputs of two batch sizes and lengths.
ONNX files are checked, loaded once by ONNX Runtime, and re-saved with external data (optimize.save_model).
Build time only: imports torch and transformers.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.inference.manifest import TensorSpec
from layers.optimize import save_model
from layers.spec import ModelSpec, SpecError
from layers.spec_onnx import graph_signature

OPSET = 17
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
HEADS = {"base": "last_hidden_state", "sequence-classification": "logits"}


@dataclass(frozen=True)
class Exported:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    max_abs_diff: float  # against PyTorch (0 for an ONNX file: it is the reference)


def _quiet_transformers() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    # Its load report is a warning; what matters in it (missing weights) is checked and said here.
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _model_class(spec: ModelSpec, head: str) -> Any:
    _quiet_transformers()
    import transformers
    from transformers.models.auto import modeling_auto

    names = (
        modeling_auto.MODEL_MAPPING_NAMES
        if head == "base"
        else modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
    )
    name = names.get(spec.model_type or "")
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    if cls is None:
        kind = "encoder" if head == "base" else "sequence classifier"
        raise SpecError(
            f"transformers has no {kind} for model_type {spec.model_type!r}: the exporter does not know it"
        )
    return cls


def hf_input_names(spec: ModelSpec, head: str) -> tuple[str, ...]:
    """The text inputs the model's forward takes, in TEXT_INPUTS order; token_type_ids only when the
    config has token types to tell apart (RoBERTa's one type is left out)."""
    parameters = inspect.signature(_model_class(spec, head).forward).parameters
    names = [n for n in TEXT_INPUTS if n in parameters]
    if "input_ids" not in names:
        raise SpecError(
            f"{spec.architecture or spec.model_type}'s forward takes no input_ids: not a text model"
        )
    if "token_type_ids" in names and int(spec.config.get("type_vocab_size", 2) or 0) < 2:
        names.remove("token_type_ids")
    return tuple(names)


def export_hf(
    spec: ModelSpec,
    out_file: Path,
    *,
    head: str,
    names: Sequence[str],
    checks: Sequence[dict[str, np.ndarray]],
    tolerance: float = 1e-4,
) -> Exported:
    """Write out_file (+ out_file.data) from spec's Hugging Face directory; checks are padded feeds
    (with attention_mask) of two different shapes, compared with PyTorch after the export."""
    import warnings

    _quiet_transformers()
    import onnx
    import torch

    output = HEADS[head]
    cls = _model_class(spec, head)

    class KeywordInputs(torch.nn.Module):
        # transformers 5 models must be called by keyword; the exporter passes positionally.
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, args, strict=True)))[output]  # type: ignore[no-any-return]

    assert spec.model_dir is not None
    try:
        # Eager attention exports the plain MatMul/Softmax pattern (and transformers 5's mask graph)
        # that ONNX Runtime's BERT fusions recognise; the SDPA export is left unfused and runs slower.
        model = cls.from_pretrained(
            str(spec.model_dir), local_files_only=True, attn_implementation="eager"
        ).eval()
    except Exception as exc:  # transformers raises many types for a broken directory
        raise SpecError(
            f"transformers could not load {spec.model_dir}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    wrapper = KeywordInputs(model).eval()
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[output] = {0: "batch", 1: "sequence"} if head == "base" else {0: "batch"}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes; the check on a second shape is what counts.
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "model.onnx"
        args = tuple(torch.from_numpy(checks[0][name]) for name in names)
        try:
            torch.onnx.export(
                wrapper,
                args,
                str(raw),
                input_names=list(names),
                output_names=[output],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as exc:  # the exporter's errors name an op or a Python construct
            raise SpecError(
                f"the ONNX exporter failed on {spec.architecture or spec.model_type}: {type(exc).__name__}: {_first_line(exc)}"
            ) from None
        references = [wrapper(*(torch.from_numpy(f[n]) for n in names)).numpy() for f in checks]
        graph = onnx.load(str(raw))
    save_model(graph, out_file)
    diff = max(check(out_file, f, ref, output, tolerance) for f, ref in zip(checks, references, strict=True))
    inputs, outputs = graph_signature(out_file)
    return Exported(inputs, outputs, OPSET, diff)


def import_onnx(source: Path, out_file: Path) -> Exported:
    """Check an ONNX file (and its external data), load it once with ONNX Runtime, and save it to
    out_file with the weights in one external data file."""
    import onnx
    import onnxruntime as ort

    inputs, outputs = graph_signature(source)
    try:
        onnx.checker.check_model(str(source))
    except Exception as exc:  # ValidationError, and file errors for missing external data
        raise SpecError(f"{source} is not a valid ONNX model: {_first_line(exc)}") from None
    try:
        graph = onnx.load(str(source))
    except Exception as exc:
        raise SpecError(
            f"{source}: its weights could not be read (external data beside it?): {_first_line(exc)}"
        ) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT's pybind errors
        raise SpecError(f"ONNX Runtime cannot load {source}: {_first_line(exc)}") from None
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), 0)
    save_model(graph, out_file)
    return Exported(inputs, outputs, int(opset), 0.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def check(
    out_file: Path, feeds: dict[str, np.ndarray], reference: np.ndarray, output: str, tolerance: float
) -> float:
    """Max abs difference to PyTorch (token states compared where the mask is 1); over the
    tolerance, scaled by the output's magnitude, the export is broken."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    got = session.run([output], feeds)[0]
    if got.ndim == 3 and "attention_mask" in feeds:
        mask = feeds["attention_mask"][:, :, None].astype(bool)
        diff = float(np.abs(np.where(mask, got - reference, 0)).max())
    else:
        diff = float(np.abs(got - reference).max())
    limit = tolerance * max(1.0, float(np.abs(reference).max()))
    if diff > limit:
        raise SpecError(
            f"the ONNX export differs from PyTorch by {diff:.2e} (> {limit:.0e}): the export is broken"
        )
    return diff
