"""A bounded closed-loop load driver for a Function URL, checking every answer.

At each concurrency level, that many client threads send embeddings requests for a fixed time, each
on its own keep-alive HTTPS connection (the twin's UrlClient, so no new dependency; locust would add
gevent, which monkey-patches ssl and sockets under boto3 in the same process). Every answer must be
either correct (every vector within `atol` of the model's own answer for that text, computed
beforehand by `reference`) or a throttle in Lambda's shape (429, x-amzn-errortype
TooManyRequestsException, a JSON message). Anything else is counted as an error or a wrong answer.
A throttled client waits `throttle_pause_s` before its next request, as an SDK's backoff would,
instead of spinning on 429s.

Cold starts are counted twice: by the client (`x-preheat-start: cold` on answers) and by the
platform (the twin's invocation records, which also count throttles it refused).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scripts.reliability import replies

Reference = Callable[[str], np.ndarray]


@dataclass
class LevelReport:
    concurrency: int
    seconds: float = 0.0
    requests: int = 0
    correct: int = 0
    wrong: int = 0
    throttled: int = 0
    errors: int = 0
    hangs: int = 0
    cold_client: int = 0
    cold_platform: int = 0
    throttled_platform: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # of correct answers
    cache: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def as_dict(self) -> dict[str, Any]:
        p50, p99 = self.percentile(50), self.percentile(99)
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "correct": self.correct,
            "wrong": self.wrong,
            "throttled": self.throttled,
            "errors": self.errors,
            "hangs": self.hangs,
            "cold_starts": self.cold_client,
            "cold_starts_platform": self.cold_platform,
            "throttled_platform": self.throttled_platform,
            "p50_ms": None if p50 is None else round(p50, 2),
            "p99_ms": None if p99 is None else round(p99, 2),
            "throughput_rps": round(self.correct / self.seconds, 1) if self.seconds else 0.0,
            "cache": dict(self.cache),
            "samples": self.samples,
        }


def texts(count: int, seed: int = 7, words: Sequence[str] | None = None) -> list[str]:
    """`count` distinct short sentences (a fixed seed), so requests mix cache misses and repeats."""
    rng = random.Random(seed)
    vocabulary = list(words or "the a cat dog sat ran on big small red blue mat hello world".split())
    out: set[str] = set()
    while len(out) < count:
        out.add(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(2, 6))))
    return sorted(out)


def check_answer(body: bytes, sent: Sequence[str], reference: dict[str, np.ndarray], atol: float) -> str | None:
    """None if every vector is the model's answer for its text, else what is wrong."""
    try:
        data = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        return f"not an embeddings answer: {body[:120]!r}"
    if len(data) != len(sent):
        return f"{len(data)} vectors for {len(sent)} texts"
    for item, text in zip(sorted(data, key=lambda d: d["index"]), sent, strict=True):
        got = np.asarray(item["embedding"], dtype=np.float32)
        want = reference[text]
        if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=0):
            diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
            return f"vector for {text!r} differs by {diff:.2e} (atol {atol:g})"
    return None


def is_throttle(status: int, headers: dict[str, str], body: bytes) -> bool:
    return status == 429 and replies.lambda_shape(headers, body) == "TooManyRequestsException"


def run_level(
    make_client: Callable[[], Any],
    model: str,
    pool: Sequence[str],
    reference: dict[str, np.ndarray],
    *,
    concurrency: int,
    seconds: float,
    atol: float,
    timeout: float = 30.0,
    batch: int = 1,
    throttle_pause_s: float = 0.05,
    seed: int = 1,
) -> LevelReport:
    report = LevelReport(concurrency)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = make_client()
        client.timeout = timeout
        try:
            while time.monotonic() < stop_at:
                sent = [rng.choice(pool) for _ in range(batch)]
                try:
                    reply = client.request("POST", "/v1/embeddings", {"input": sent, "model": model})
                except TimeoutError:
                    with lock:
                        report.requests += 1
                        report.hangs += 1
                    continue
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        report.requests += 1
                        report.errors += 1
                        _sample(report, f"no answer: {exc!r}")
                    continue
                throttled = is_throttle(reply.status, reply.headers, reply.body)
                problem = None
                if reply.status == 200:
                    problem = check_answer(reply.body, sent, reference, atol)
                with lock:
                    report.requests += 1
                    if throttled:
                        report.throttled += 1
                    elif reply.status != 200:
                        report.errors += 1
                        _sample(report, f"{reply.status}: {reply.body[:200]!r}")
                    elif problem:
                        report.wrong += 1
                        _sample(report, problem)
                    else:
                        report.correct += 1
                        report.latencies_ms.append(reply.ms)
                        report.cache[reply.headers.get("x-preheat-cache", "?")] += 1
                        if reply.headers.get("x-preheat-start") == "cold":
                            report.cold_client += 1
                if throttled:
                    time.sleep(throttle_pause_s)
        finally:
            client.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 10)
    report.seconds = time.monotonic() - started
    return report


def _sample(report: LevelReport, text: str) -> None:
    if len(report.samples) < 5:
        report.samples.append(text[:300])


def run_levels(
    twin: Any,
    function: str,
    model: str,
    pool: Sequence[str],
    reference: dict[str, np.ndarray],
    *,
    levels: Sequence[int],
    seconds: float,
    atol: float,
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> list[LevelReport]:
    """Each level in turn against the twin's Function URL for `function`, instances discarded before
    the first level (so its cold starts are real); the platform's counts come from the twin."""
    twin.reset(function)
    out = []
    for level in levels:
        if progress:
            progress(f"load: {level} concurrent clients for {seconds:g} s")
        seq, _ = twin.invocations()
        report = run_level(lambda: twin.url_client(function), model, pool, reference, concurrency=level,
                           seconds=seconds, atol=atol, **kwargs)
        _, records = twin.invocations(seq, function)
        report.cold_platform = sum(1 for r in records if r["cold"])
        report.throttled_platform = sum(1 for r in records if r["outcome"] == "throttled")
        out.append(report)
    return out
