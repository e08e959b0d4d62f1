"""The cache through the real Lambda handler and its cold path."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import context, emf_lines, event
from tests.support import tiny_models
from tests.support.cache_support import cache_counts

LoadHandler = Callable[..., ModuleType]


def embeddings_event(texts: list[str] | str) -> dict[str, Any]:
    body = json.dumps({"input": texts, "model": "tiny"}).encode()
    return event("function_url", body=base64.b64encode(body).decode(), isBase64Encoded=True)


def answer(result: dict[str, Any]) -> tuple[str, Any]:
    raw = result["body"]
    body = json.loads(base64.b64decode(raw) if result.get("isBase64Encoded") else raw)
    return result["headers"]["x-preheat-cache"], body


def test_the_header_says_memory_on_a_repeat(
    embedding_dir: Path, load_handler: LoadHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = load_handler(embedding_dir, PREHEAT_CACHE_METRICS_INTERVAL_MS="0")
    capsys.readouterr()
    first_level, first = answer(handler.handler(embeddings_event("hello world"), context("r1")))
    again_level, again = answer(handler.handler(embeddings_event("hello world"), context("r2")))
    mixed_level, _ = answer(handler.handler(embeddings_event(["hello world", "red cat"]), context("r3")))
    assert (first_level, again_level, mixed_level) == ("miss", "memory", "miss")
    assert again == first  # same vectors, same usage
    np.testing.assert_allclose(
        again["data"][0]["embedding"], tiny_models.expected_embedding("hello world"), atol=1e-6
    )
    blobs = emf_lines(capsys.readouterr().out)
    assert cache_counts(blobs) == {"memory": [2.0, 2.0, 0.0]}  # hits, misses, errors
    # The runtime's own per-invocation blob is untouched: one per request, dimension `start`.
    assert [b["start"] for b in blobs if "start" in b] == ["cold", "warm", "warm"]


def test_memory_bytes_zero_turns_the_cache_off(embedding_dir: Path, load_handler: LoadHandler) -> None:
    handler = load_handler(embedding_dir, PREHEAT_CACHE_MEMORY_BYTES="0")
    levels = [answer(handler.handler(embeddings_event("hello world"), context()))[0] for _ in range(2)]
    assert levels == ["miss", "miss"]


def test_bad_cache_settings_fail_init_naming_the_variable(
    embedding_dir: Path, load_handler: LoadHandler
) -> None:
    from functions.inference.errors import ConfigError

    with pytest.raises(ConfigError, match="PREHEAT_CACHE_TTL_SECONDS"):
        load_handler(embedding_dir, PREHEAT_CACHE_TTL_SECONDS="forever")


# Modules a shared tier needs, and what it must never pull in.
TIER_MODULES = ["socket", "ssl", "select", "functions.cache.redis", "functions.cache.dynamodb"]
NEVER = ["boto3", "botocore.session", "botocore.client", "redis", "http.client", "asyncio"]


def _imported(embedding_dir: Path, **env: str) -> list[str]:
    code = (
        "import sys, json\n"
        "import functions.inference.handler\n"
        f"print(json.dumps(sorted(m for m in {TIER_MODULES + NEVER!r} if m in sys.modules)))\n"
    )
    full = {**os.environ, "PREHEAT_MODEL_DIR": str(embedding_dir), "PREHEAT_THREADS": "1", **env}
    for key in ("PREHEAT_CACHE_TABLE", "PREHEAT_CACHE_REDIS_URL"):
        if key not in env:
            full.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, check=True, timeout=60
    )
    result: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_default_cold_path_imports_no_network_client(embedding_dir: Path) -> None:
    assert _imported(embedding_dir) == []


def test_a_shared_tier_costs_sockets_not_an_sdk(embedding_dir: Path) -> None:
    # Nothing listens on these: the tier fails in the background and init goes on regardless.
    redis = _imported(embedding_dir, PREHEAT_CACHE_REDIS_URL="redis://127.0.0.1:9/0")
    assert redis == ["functions.cache.redis", "select", "socket"]
    table = _imported(
        embedding_dir,
        PREHEAT_CACHE_TABLE="preheat-cache",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:9",
    )
    assert table == ["functions.cache.dynamodb", "select", "socket"]
