"""Session fixtures: the models of tests/support/hf_models.py, each built once per test session with
`preheat build --model` through the CLI entry (scripts.cli.main), as a user would build them.

Fixtures (each a `BuiltModel`; registered for every test by tests/conftest.py):
- `built_st_bert`: sentence-transformers BERT, CLS pooling + Normalize, built-in gate text;
- `built_roberta`: RoBERTa with a byte-level BPE tokenizer, plain HF directory, built-in gate text;
- `built_classifier`: 3-label DistilBERT classifier, gated on a `--sample` of JSON-lines texts;
- `built_cross_encoder`: BERT cross-encoder (pairs, one sigmoid score), built-in gate pairs;
- `built_cnn`: a torch CNN as an ONNX file, dynamic height/width given with `--shape`;
- `built_fragile`: an ONNX MLP int8 cannot hold, gated on an `.npz` sample: ships fp32;
- `built_models`: all six, by name.
Model directories are `BuiltModel.model_dir` (served) and `.fp32_dir`, under a session temp dir.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from functions.inference import manifest as manifests
from layers import textdata
from tests.support import hf_models


@dataclass(frozen=True)
class BuiltModel:
    name: str
    spec: Path  # what --model was given
    source_dir: Path  # the directory the model was made in (weights, tokenizer, weights.pt)
    model_dir: Path
    fp32_dir: Path
    exit_code: int
    report: str  # stdout of `preheat build`
    errors: str  # stderr

    @property
    def manifest(self) -> manifests.Manifest:
        return manifests.load(self.model_dir)

    @property
    def fp32_manifest(self) -> manifests.Manifest:
        return manifests.load(self.fp32_dir)


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """`preheat ARGV` in this process: (exit code, stdout, stderr)."""
    from scripts import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def byo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("byo")


def _build(root: Path, name: str, make: Callable[[Path], Path], *extra: str) -> BuiltModel:
    source_dir = root / "sources" / name
    spec = make(source_dir)
    out = root / "models"
    code, stdout, stderr = run_cli(["build", "--model", str(spec), "--name", name, "--out", str(out), *extra])
    built = BuiltModel(name, spec, source_dir, out / name, out / f"{name}-fp32", code, stdout, stderr)
    if code != 0:
        pytest.fail(f"preheat build --model {spec} failed ({code}):\n{stdout}\n{stderr}")
    return built


@pytest.fixture(scope="session")
def built_st_bert(byo_root: Path) -> BuiltModel:
    return _build(byo_root, "st-bert", hf_models.write_st_bert)


@pytest.fixture(scope="session")
def built_roberta(byo_root: Path) -> BuiltModel:
    return _build(byo_root, "roberta", hf_models.write_roberta)


CLASSIFIER_SAMPLE = 120  # texts in the classifier's --sample


@pytest.fixture(scope="session")
def built_classifier(byo_root: Path) -> BuiltModel:
    sample = byo_root / "classifier-sample.jsonl"
    texts = (textdata.calibration() + textdata.heldout())[::3][:CLASSIFIER_SAMPLE]
    sample.write_text("".join(json.dumps(t) + "\n" for t in texts))
    return _build(byo_root, "classifier", hf_models.write_classifier, "--sample", str(sample))


@pytest.fixture(scope="session")
def built_cross_encoder(byo_root: Path) -> BuiltModel:
    return _build(byo_root, "cross-encoder", hf_models.write_cross_encoder)


@pytest.fixture(scope="session")
def built_cnn(byo_root: Path) -> BuiltModel:
    return _build(byo_root, "cnn", hf_models.write_cnn, "--shape", "height=32", "--shape", "width=32")


FRAGILE_SAMPLE = 40


@pytest.fixture(scope="session")
def built_fragile(byo_root: Path) -> BuiltModel:
    sample = byo_root / "fragile-sample.npz"
    rng = np.random.default_rng(11)
    np.savez(sample, x=rng.normal(size=(FRAGILE_SAMPLE, hf_models.FRAGILE_WIDTH)).astype(np.float32))
    return _build(byo_root, "fragile", hf_models.write_fragile, "--sample", str(sample))


@pytest.fixture(scope="session")
def built_models(
    built_st_bert: BuiltModel,
    built_roberta: BuiltModel,
    built_classifier: BuiltModel,
    built_cross_encoder: BuiltModel,
    built_cnn: BuiltModel,
    built_fragile: BuiltModel,
) -> dict[str, BuiltModel]:
    return {
        m.name: m
        for m in (built_st_bert, built_roberta, built_classifier, built_cross_encoder, built_cnn, built_fragile)
    }
