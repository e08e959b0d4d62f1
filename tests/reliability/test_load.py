"""Load through the twin's HTTPS Function URL beyond the reserved concurrency: every answer is the
model's (checked vector by vector) or Lambda's throttle, never anything else."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from scripts.reliability import load
from tests.reliability.conftest import LEVELS, RESERVED
from tests.support import tiny_models

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_every_answer_is_correct_or_a_lambda_throttle(report: dict[str, Any]) -> None:
    levels = {level["concurrency"]: level for level in report["load"]["levels"]}
    assert tuple(levels) == LEVELS
    for clients, level in levels.items():
        assert (level["wrong"], level["errors"], level["hangs"]) == (0, 0, 0), level["samples"]
        assert level["correct"] > 0 and level["correct"] + level["throttled"] == level["requests"]
        assert level["p50_ms"] is not None and level["p99_ms"] >= level["p50_ms"]
        if clients <= RESERVED:
            # A closed-loop client sends its next request after its answer, when its slot is free.
            assert level["throttled"] == 0, level
        else:
            assert level["throttled"] > 0, level
        # What the clients saw is what the platform counted.
        assert level["throttled"] == level["throttled_platform"]
        assert level["cold_starts"] == level["cold_starts_platform"]
    # Instances were discarded before the first level: its first request was a cold start; and no
    # level started more instances than the reserved concurrency allows.
    assert levels[1]["cold_starts"] == 1
    assert sum(level["cold_starts"] for level in levels.values()) <= RESERVED
    assert report["load"]["wrong"] == 0 and report["load"]["errors"] == 0


def _answer(vectors: list[np.ndarray]) -> bytes:
    return json.dumps({"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}).encode()


def test_the_answer_check_catches_wrong_swapped_and_missing_vectors() -> None:
    """The check the load test relies on, against the tiny model's answers computed by hand (numpy)."""
    texts = ["the cat sat", "a dog ran"]
    reference = {t: tiny_models.expected_embedding(t) for t in texts}
    right = [reference[t] for t in texts]
    assert load.check_answer(_answer(right), texts, reference, atol=1e-6) is None
    assert "differs" in str(load.check_answer(_answer(right[::-1]), texts, reference, atol=1e-6))
    nudged = [right[0], right[1] + 1e-3]
    assert "differs" in str(load.check_answer(_answer(nudged), texts, reference, atol=1e-4))
    assert "1 vectors for 2 texts" == load.check_answer(_answer(right[:1]), texts, reference, atol=1e-6)
    assert "not an embeddings answer" in str(load.check_answer(b'{"error": {}}', texts, reference, atol=1e-6))


def test_a_throttle_is_recognised_only_in_lambdas_shape() -> None:
    body = json.dumps({"Message": "Rate Exceeded.", "code": "TooManyRequestsException"}).encode()
    assert load.is_throttle(429, {"x-amzn-errortype": "TooManyRequestsException"}, body)
    assert not load.is_throttle(429, {}, body)
    assert not load.is_throttle(503, {"x-amzn-errortype": "TooManyRequestsException"}, body)
    assert not load.is_throttle(429, {"x-amzn-errortype": "TooManyRequestsException"}, b"busy")
