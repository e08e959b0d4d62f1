"""Export a BERT-family sentence encoder to ONNX: dynamic batch and sequence axes, opset 17,
weights in an external data file (ONNX Runtime maps it instead of copying: the largest single
cold-start lever measured here). Build time only: imports torch and transformers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
OPSET = 17
SAMPLE = [
    "Export check: a short sentence.",
    "A second, somewhat longer sentence checks the padding path too.",
]
# Checked at a batch size and length the export never saw, so a shape frozen by tracing shows up.
OTHER_SHAPE = ["one", "two words", "and a third input that is a good deal longer than the others were " * 3]


def export(source_dir: Path, out_file: Path, *, tolerance: float = 1e-4) -> float:
    """Write out_file (+ out_file.data) and return the max abs difference to PyTorch on SAMPLE."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import onnx
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    class KeywordInputs(torch.nn.Module):
        # transformers 5 models must be called by keyword; the exporter passes positionally.
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state  # type: ignore[no-any-return]

    # Eager attention exports the plain MatMul/Softmax pattern (and transformers 5's mask graph) that
    # ONNX Runtime's BERT fusions recognise; the SDPA export is left unfused and runs slower.
    model = AutoModel.from_pretrained(
        str(source_dir), local_files_only=True, attn_implementation="eager"
    ).eval()
    wrapper = KeywordInputs(model).eval()
    tokenizer = Tokenizer.from_file(str(source_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def feeds_for(texts: list[str]) -> dict[str, np.ndarray]:
        enc = tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }

    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    axes[OUTPUT] = {0: "batch", 1: "sequence"}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    checks = [feeds_for(SAMPLE), feeds_for(OTHER_SHAPE)]
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes; the check on OTHER_SHAPE is what counts.
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "model.onnx"
        args = tuple(torch.from_numpy(checks[0][name]) for name in INPUTS)
        torch.onnx.export(
            wrapper,
            args,
            str(raw),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        references = [wrapper(*(torch.from_numpy(f[n]) for n in INPUTS)).numpy() for f in checks]
        graph = onnx.load(str(raw))
    save_with_external_data(graph, out_file)
    return max(check(out_file, f, ref, tolerance) for f, ref in zip(checks, references, strict=True))


def save_with_external_data(graph: Any, out_file: Path) -> None:
    import onnx

    data = out_file.with_name(out_file.name + ".data")
    for stale in (out_file, data):
        stale.unlink(missing_ok=True)
    onnx.save_model(
        graph,
        str(out_file),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )


def check(out_file: Path, feeds: dict[str, np.ndarray], reference: np.ndarray, tolerance: float) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], feeds)[0]
    mask = feeds["attention_mask"][:, :, None].astype(bool)
    diff = float(np.abs(np.where(mask, got - reference, 0)).max())
    if diff > tolerance:
        raise SystemExit(
            f"the ONNX export differs from PyTorch by {diff:.2e} (> {tolerance:.0e}): export is broken"
        )
    return diff
