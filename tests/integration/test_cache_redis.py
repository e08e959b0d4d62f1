"""The Redis tier against a real redis-server on 127.0.0.1, including the server dying mid-run."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from functions.cache import codec
from functions.cache.redis import RedisTier
from functions.inference.manifest import Manifest
from functions.inference.tasks.text import TextModel, text_keyspace
from scripts.cache_servers import RedisServer, redis_binary
from tests.conftest import context, emf_lines, event
from tests.support import tiny_models
from tests.support.cache_support import Counting, build, cache_counts, load_tiny

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    if redis_binary() is None:
        if os.environ.get("CI"):
            pytest.fail(
                "redis-server is missing in CI: .ci/run must install it (apt-get install redis-server)"
            )
        pytest.skip("redis-server is not installed here: apt-get install -y redis-server (.ci/run does it)")
    with RedisServer() as running:
        yield running


@pytest.fixture
def redis(server: RedisServer) -> RedisServer:
    if server.process is None or server.process.poll() is not None:
        server.start(server.port)
    server.command("FLUSHALL")
    return server


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TextModel, Manifest]:
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_models.write_embedding_model(path)
    return load_tiny(path)


def test_a_second_instance_gets_the_answer_from_redis(redis: RedisServer, tiny: Any) -> None:
    task, manifest = tiny
    model = Counting(task)
    one = build(model, manifest, tier=RedisTier(redis.url), write="sync")
    two = build(model, manifest, tier=RedisTier(redis.url), write="sync")
    assert one.rows(["the cat sat"]).served_by == "miss"
    shared = two.rows(["the cat sat"])
    assert shared.served_by == "redis"
    np.testing.assert_allclose(shared.values[0], tiny_models.expected_embedding("the cat sat"), atol=1e-6)
    assert shared.tokens == task.rows(["the cat sat"]).tokens
    assert two.rows(["the cat sat"]).served_by == "memory"
    assert two.rows(["the cat sat", "the dog"]).served_by == "miss"
    assert one.rows(["the cat sat", "the dog"]).served_by == "redis"  # slowest level wins
    assert model.texts == ["the cat sat", "the dog"]


def test_values_are_compact_float32_with_the_ttl(redis: RedisServer, tiny: Any) -> None:
    task, manifest = tiny
    cached = build(task, manifest, tier=RedisTier(redis.url), write="sync", ttl_seconds=600)
    cached.rows(["a big red dog"])
    key = text_keyspace(manifest, truncate=True).key("a big red dog")
    raw = redis.command("GET", key.text)
    assert isinstance(raw, bytes) and len(raw) == codec.size_of(tiny_models.DIM)
    ttl = redis.command("PTTL", key.text)
    assert isinstance(ttl, int) and 590_000 < ttl <= 600_000


def test_expired_and_corrupted_values_are_misses(redis: RedisServer, tiny: Any) -> None:
    task, manifest = tiny
    space = text_keyspace(manifest, truncate=True)
    model = Counting(task)
    cached = build(model, manifest, tier=RedisTier(redis.url), write="sync", memory_bytes=0)
    right = tiny_models.expected_embedding("the mat")

    key = space.key("the mat")
    stale = codec.encode(
        right,
        tokens=4,
        expires_at=int(time.time()) - 1,
        model_digest=space.model_digest,
        key_digest=key.digest,
    )
    redis.command("SET", key.text, stale)  # no Redis TTL: only the value knows it is expired
    assert cached.rows(["the mat"]).served_by == "miss"

    good = redis.command("GET", key.text)
    assert isinstance(good, bytes)
    redis.command("SET", key.text, good[:-5] + b"\x00" * 5)  # torn write
    assert cached.rows(["the mat"]).served_by == "miss"
    redis.command("SET", key.text, b"not a cache value at all")
    assert cached.rows(["the mat"]).served_by == "miss"
    assert model.texts == ["the mat"] * 3
    # Each miss rewrote a good value: now it is a hit, and right.
    hit = cached.rows(["the mat"])
    assert hit.served_by == "redis"
    np.testing.assert_allclose(hit.values[0], right, atol=1e-6)


def test_a_new_model_version_never_reads_the_old_ones_answers(
    redis: RedisServer, tiny: Any, tmp_path: Path
) -> None:
    task, manifest = tiny
    new_dir = tmp_path / "tiny-v2"
    tiny_models.write_embedding_model(new_dir, name="tiny2")
    new_task, new_manifest = load_tiny(new_dir)
    assert new_manifest.model_id != manifest.model_id
    old = build(task, manifest, tier=RedisTier(redis.url), write="sync")
    new_model = Counting(new_task)
    new = build(new_model, new_manifest, tier=RedisTier(redis.url), write="sync")
    old.rows(["the blue cat"])
    # Even an old answer planted under the new model's key is refused: the value names its model.
    old_key = text_keyspace(manifest, truncate=True).key("the blue cat")
    new_key = text_keyspace(new_manifest, truncate=True).key("the blue cat")
    planted = redis.command("GET", old_key.text)
    assert isinstance(planted, bytes)
    redis.command("SET", new_key.text, planted)
    assert new.rows(["the blue cat"]).served_by == "miss"
    assert new_model.texts == ["the blue cat"]


def test_background_writes_reach_redis_after_the_answer(redis: RedisServer, tiny: Any) -> None:
    task, manifest = tiny
    cached = build(task, manifest, tier=RedisTier(redis.url), write="background")
    cached.rows(["red", "blue", "small cat"])
    assert cached.writer is not None
    cached.writer.drain()
    space = text_keyspace(manifest, truncate=True)
    for text in ("red", "blue", "small cat"):
        assert isinstance(redis.command("GET", space.key(text).text), bytes)


def _run_load(
    cached: Any, texts: list[str], *, threads: int, seconds: float, during: Callable[[float], None]
) -> tuple[list[str], list[float], int]:
    """Requests from `threads` threads for `seconds`; `during(elapsed)` runs on the main thread."""
    levels: list[str] = []
    latencies: list[float] = []
    failures = [0]
    stop = threading.Event()
    rng = np.random.default_rng(3)
    picks = rng.zipf(1.3, size=100_000) % len(texts)

    def worker(offset: int) -> None:
        i = offset
        while not stop.is_set():
            text = texts[picks[i % len(picks)]]
            i += threads
            started = time.perf_counter()
            try:
                got = cached.rows([text])
                np.testing.assert_allclose(got.values[0], tiny_models.expected_embedding(text), atol=1e-6)
                levels.append(got.served_by)
            except Exception:
                failures[0] += 1
            latencies.append(time.perf_counter() - started)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < seconds:
            during(elapsed)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in pool:
            t.join(30)
    return levels, latencies, failures[0]


def test_redis_killed_mid_run_fails_no_request_and_comes_back(
    redis: RedisServer, tiny: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    task, manifest = tiny
    texts = [f"{a} {b}" for a in tiny_models.WORDS for b in tiny_models.WORDS]
    # Small memory level, so the shared tier keeps being asked.
    # Connections to a killed server are refused at once: a long timeout costs nothing here, and
    # keeps a loaded machine's slow answers from being mistaken for a second outage.
    cached = build(
        task, manifest, tier=RedisTier(redis.url), write="sync", memory_bytes=4096, timeout_ms=1000
    )
    events: dict[str, float] = {}

    def chaos(elapsed: float) -> None:
        if elapsed > 1.0 and "killed" not in events:
            redis.kill()
            events["killed"] = elapsed
        if elapsed > 3.0 and "restarted" not in events:
            redis.start(redis.port)
            events["restarted"] = elapsed

    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="preheat"):
        levels, latencies, failures = _run_load(cached, texts, threads=4, seconds=6.5, during=chaos)
    assert failures == 0
    assert len(levels) > 200
    counts = cache_counts(emf_lines(capsys.readouterr().out))
    # The breaker: a handful of failed calls for a 2 s outage (the first ones and ~1 per probe),
    # not one per request.
    assert 1 <= counts["redis"][2] <= 12, counts
    assert max(latencies) < 5.0  # hang detector; the latency bound is measured by `preheat bench cache`
    messages = [r.getMessage() for r in caplog.records if "cache tier redis" in r.getMessage()]
    assert sum("unavailable" in m for m in messages) == 1
    assert sum("is back" in m for m in messages) == 1
    assert "redis" in levels[len(levels) // 2 :]  # serving from Redis again after the restart


def test_a_hung_redis_costs_at_most_the_timeout_then_nothing(
    redis: RedisServer, tiny: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    task, manifest = tiny
    cached = build(task, manifest, tier=RedisTier(redis.url), write="sync", memory_bytes=0, timeout_ms=30)
    cached.rows(["the cat"])
    redis.pause()
    try:
        capsys.readouterr()
        levels, latencies, failures = _run_load(
            cached, ["the cat", "the dog"], threads=2, seconds=0.6, during=lambda _: None
        )
    finally:
        redis.resume()
    assert failures == 0 and set(levels) == {"miss"}
    assert max(latencies) < 2.0  # hang detector: a hung node must not hold a request
    errors = cache_counts(emf_lines(capsys.readouterr().out))["redis"][2]
    assert 1 <= errors <= 2  # the calls in flight when it hung; the rest skipped the tier


def _embed_event(text: str) -> dict[str, Any]:
    body = json.dumps({"input": text, "model": "tiny"}).encode()
    return event("function_url", body=base64.b64encode(body).decode(), isBase64Encoded=True)


def test_through_the_handler_a_new_instance_is_served_by_redis(
    redis: RedisServer,
    embedding_dir: Path,
    load_handler: Callable[..., ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"PREHEAT_CACHE_REDIS_URL": redis.url, "PREHEAT_CACHE_METRICS_INTERVAL_MS": "0"}
    first = load_handler(embedding_dir, AWS_LAMBDA_FUNCTION_NAME="preheat-test", **env)
    assert first.handler(_embed_event("hello world"), context())["headers"]["x-preheat-cache"] == "miss"
    assert first.handler(_embed_event("hello world"), context())["headers"]["x-preheat-cache"] == "memory"
    capsys.readouterr()
    second = load_handler(embedding_dir, AWS_LAMBDA_FUNCTION_NAME="preheat-test", **env)  # a new instance
    result = second.handler(_embed_event("hello world"), context())
    assert result["headers"]["x-preheat-cache"] == "redis"
    assert cache_counts(emf_lines(capsys.readouterr().out)) == {
        "memory": [0.0, 1.0, 0.0],
        "redis": [1.0, 0.0, 0.0],
    }


def test_a_large_request_gets_one_timeout_per_round_trip(redis: RedisServer) -> None:
    from functions.cache.metrics import CacheMetrics
    from functions.cache.shared import Guarded

    guarded = Guarded(
        RedisTier(redis.url), timeout_seconds=0.5, metrics=CacheMetrics(service="s", namespace="n")
    )
    assert guarded.wait_ready(10)
    for keys, rounds in ((1, 1), (100, 1), (101, 2), (250, 3)):
        deadline = guarded._admit(keys, guarded.tier.read_batch)
        assert deadline is not None
        assert deadline - time.monotonic() == pytest.approx(0.5 * rounds, abs=0.05)
    assert guarded.get_many([f"k{i}" for i in range(250)]) == [None] * 250
