"""One reliability run (scripts/bench_reliability.collect) with tiny models, shared by this package's
tests: each scenario runs once, on one twin, and each test asserts on its part of the report (the
figures `preheat bench reliability` prints with the real model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scripts.bench_reliability import Options, collect
from tests.support.twin import ROOT

# Small but real: every route fuzzed on both paths, levels beyond the reserved concurrency (2).
LEVELS = (1, 2, 4)
RESERVED = 2


@pytest.fixture(scope="package")
def report(
    embedding_dir: Path, classifier_dir: Path, cross_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    options = Options(
        model_dir=embedding_dir,
        state_dir=tmp_path_factory.mktemp("reliability"),
        levels=LEVELS,
        reserved=RESERVED,
        seconds=2.0,
        examples=4,
        fuzz_seconds=60.0,
        phase_seconds=1.5,
        pool=60,
        atol=1e-5,
        root=ROOT,
        classifier_dir=classifier_dir,
        reranker_dir=cross_encoder_dir,
    )
    return collect(options)
