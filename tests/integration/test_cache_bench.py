"""`preheat bench cache` end to end on the tiny model: the figures it promises are there, and the
outage phase (a real redis-server killed and restarted) fails no request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.cache_servers import redis_binary
from scripts.cli import main

pytestmark = pytest.mark.integration


def test_bench_cache_writes_its_figures(embedding_dir: Path, tmp_path: Path) -> None:
    if redis_binary() is None:
        pytest.skip("redis-server is not installed here: apt-get install -y redis-server (.ci/run does it)")
    out, png = tmp_path / "cache.json", tmp_path / "cache.png"
    code = main(
        [
            "bench", "cache", "--model-dir", str(embedding_dir), "--requests", "300", "--distinct", "60",
            "--outage-seconds", "4", "--skip", "cold", "--json", str(out), "--plot", str(png),
        ]
    )  # fmt: skip
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["failed_requests_during_outage"] == 0
    assert figures["model_run_p50_ms"] > 0
    for level in ("memory", "redis", "dynamodb"):
        row = figures["levels"][level]
        assert 0 < row["hit_rate"] <= 1
        assert 0 < row["hit_p50_ms"] <= row["hit_p99_ms"]
    # Zipf with skew 1.1 over 60 texts: most requests repeat one already seen.
    assert figures["levels"]["memory"]["hit_rate"] > 0.5
    assert png.stat().st_size > 10_000
