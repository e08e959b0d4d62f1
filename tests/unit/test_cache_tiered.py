"""CachedRows around the real tiny model: repeats skip the model, answers stay exact."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from functions.cache import TextCache
from functions.cache.redis import RedisTier
from functions.cache.settings import CacheSettings
from functions.inference import manifest as manifests
from functions.inference.errors import InputTooLong
from functions.inference.tasks.text import text_keyspace
from scripts.cache_servers import free_port
from tests.conftest import emf_lines
from tests.support import tiny_models
from tests.support.cache_support import Counting, build, cache_counts, load_tiny

WORDS = tiny_models.WORDS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("models") / "tiny"
    tiny_models.write_embedding_model(path)
    return load_tiny(path)


def test_a_repeat_is_answered_from_memory_without_running_the_model(tiny) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    model = Counting(task)
    cached = build(model, manifest)
    first = cached.rows(["hello world"])
    again = cached.rows(["hello world"])
    assert (first.served_by, again.served_by) == ("miss", "memory")
    assert model.texts == ["hello world"]
    np.testing.assert_allclose(again.values[0], tiny_models.expected_embedding("hello world"), atol=1e-6)
    assert again.tokens == first.tokens == task.rows(["hello world"]).tokens


def test_mixed_requests_run_the_model_only_for_new_texts_and_report_miss(tiny) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    model = Counting(task)
    cached = build(model, manifest)
    cached.rows(["the cat", "the dog"])
    mixed = cached.rows(["the dog", "a red mat", "the cat", "a red mat"])
    assert mixed.served_by == "miss"
    assert model.calls == [["the cat", "the dog"], ["a red mat"]]  # duplicates computed once
    for row, text in zip(mixed.values, ["the dog", "a red mat", "the cat", "a red mat"], strict=True):
        np.testing.assert_allclose(row, tiny_models.expected_embedding(text), atol=1e-6)
    assert cached.rows(["a red mat", "the cat"]).served_by == "memory"


def test_callers_get_copies_they_may_change(tiny) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    cached = build(task, manifest)
    cached.rows(["big blue dog"]).values[:] = 0
    hit = cached.rows(["big blue dog"])
    hit.values[:] = 7
    np.testing.assert_allclose(
        cached.rows(["big blue dog"]).values[0], tiny_models.expected_embedding("big blue dog"), atol=1e-6
    )


def test_concurrent_identical_misses_run_the_model_once(tiny) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    model = Counting(task, delay=0.2)
    cached = build(model, manifest)
    barrier = threading.Barrier(8)
    results: list[np.ndarray] = []
    levels: list[str] = []

    def call(i: int) -> None:
        barrier.wait()
        texts = ["the red cat sat"] if i % 2 else ["the red cat sat", "the big dog ran"]
        got = cached.rows(texts)
        results.append(got.values[0])
        levels.append(got.served_by)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert sorted(model.texts) == ["the big dog ran", "the red cat sat"]  # each text ran exactly once
    for row in results:
        np.testing.assert_allclose(row, tiny_models.expected_embedding("the red cat sat"), atol=1e-6)
    assert set(levels) == {"miss"}


def test_if_the_thread_computing_a_text_fails_the_waiting_ones_compute_it(tiny) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    model = Counting(task, delay=0.2, fail_first=True)
    cached = build(model, manifest)
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def call() -> None:
        barrier.wait()
        try:
            outcomes.append(cached.rows(["small red dog"]).served_by)
        except RuntimeError:
            outcomes.append("failed")

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["failed", "miss", "miss"]
    assert len(cached._flights) == 0  # nothing left waiting forever
    assert cached.rows(["small red dog"]).served_by == "memory"


def test_a_refused_text_gets_the_same_error_as_without_the_cache(embedding_dir: Path) -> None:
    task, manifest = load_tiny(embedding_dir, truncate=False)
    cached = build(task, manifest, truncate=False)
    cached.rows(["hello"])
    too_long = " ".join(["cat"] * 40)
    with pytest.raises(InputTooLong) as uncached:
        task.rows(["hello", too_long])
    with pytest.raises(InputTooLong) as through_cache:
        cached.rows(["hello", too_long])
    assert str(through_cache.value) == str(uncached.value)
    assert "input 1 " in str(through_cache.value)


def test_nothing_is_cached_when_answers_are_over_the_size_limit(
    tiny,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    task, manifest = tiny
    model = Counting(task)
    with caplog.at_level(logging.WARNING, logger="preheat"):
        cached = build(model, manifest, max_value_bytes=64)
    assert "PREHEAT_CACHE_MAX_VALUE_BYTES" in caplog.text
    assert cached.rows(["a cat"]).served_by == cached.rows(["a cat"]).served_by == "miss"
    assert model.texts == ["a cat", "a cat"]


def test_no_cache_object_when_every_level_is_off(embedding_dir: Path) -> None:
    space = text_keyspace(manifests.load(embedding_dir), truncate=True)
    off = CacheSettings(memory_bytes=0)
    assert TextCache.open(space, settings=off, service="s", namespace="n") is None
    cache = TextCache.open(space, settings=CacheSettings(), service="s", namespace="n")
    assert cache is not None and cache.keyspace is space


def test_hits_and_misses_are_emf_metrics_per_level(tiny, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    cached = build(task, manifest, service="cache-metrics")
    capsys.readouterr()
    cached.rows(["the mat"])
    cached.rows(["the mat", "on the mat"])
    blobs = emf_lines(capsys.readouterr().out)
    assert len(blobs) == 2  # one per request at interval 0, one level touched
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "PreheatTest"
        assert sorted(directive["Dimensions"][0]) == ["level", "service"]
        assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
            "CacheHits": "Count",
            "CacheMisses": "Count",
            "CacheErrors": "Count",
        }
        assert (blob["level"], blob["service"]) == ("memory", "cache-metrics")
    assert cache_counts(blobs) == {"memory": [1.0, 2.0, 0.0]}


def test_metrics_are_batched_between_flushes(tiny, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    task, manifest = tiny
    cached = build(task, manifest, metrics_interval_seconds=3600.0)
    capsys.readouterr()
    for _ in range(5):
        cached.rows(["the blue cat"])
    assert emf_lines(capsys.readouterr().out) == []
    cached.metrics.flush()
    assert cache_counts(emf_lines(capsys.readouterr().out)) == {"memory": [4.0, 1.0, 0.0]}


# -- a shared tier that is down or hangs: requests neither fail nor wait --------------------------


class Silent:
    """A real TCP listener that accepts connections and never answers: a hung cache node."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
        except OSError:
            pass

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("kind", ["refused", "hung"])
def test_a_broken_shared_tier_degrades_to_computing(
    tiny,
    kind: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    task, manifest = tiny
    silent = Silent() if kind == "hung" else None
    port = silent.port if silent else free_port()  # nothing listens there: refused
    try:
        with caplog.at_level(logging.INFO, logger="preheat"):
            model = Counting(task)
            cached = build(model, manifest, tier=RedisTier(f"redis://127.0.0.1:{port}"), timeout_ms=50)
            capsys.readouterr()
            started = time.monotonic()
            answers = [cached.rows([f"the {w}"]) for w in WORDS]
            elapsed = time.monotonic() - started
    finally:
        if silent:
            silent.close()
    for answer, word in zip(answers, WORDS, strict=True):
        np.testing.assert_allclose(
            answer.values[0], tiny_models.expected_embedding(f"the {word}"), atol=1e-6
        )
        assert answer.served_by == "miss"
    counts = cache_counts(emf_lines(capsys.readouterr().out))
    # The first failure (the background connect and PING at init) opens the breaker: the requests
    # then skip the tier; at most one of them probes it again after the ~1 s backoff.
    assert counts["redis"][:2] == [0.0, 0.0] and 1 <= counts["redis"][2] <= 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cache tier redis" in r.message]
    assert len(warnings) == 1, "an outage is logged once"
    assert cached.shared is not None and cached.shared.breaker.is_open
    assert elapsed < 5.0  # hang detector only: the bound itself is the benchmark's business
