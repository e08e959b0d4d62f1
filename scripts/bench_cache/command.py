"""`preheat bench cache`'s arguments, and the run: the phases in order, then the report, chart and JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from layers import paths
from scripts.bench_cache.cold_path import cold_path
from scripts.bench_cache.outage import outage
from scripts.bench_cache.plot import plot
from scripts.bench_cache.replay import Phase, ms, pct, replay
from scripts.bench_cache.report import print_report
from scripts.bench_cache.workload import corpus, zipf_stream


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=paths.DEFAULT_MODEL)
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase")
    parser.add_argument("--distinct", type=int, default=600, help="distinct texts in the stream")
    parser.add_argument("--skew", type=float, default=1.1, help="Zipf exponent s: p(rank k) ~ 1/k^s")
    parser.add_argument("--instances", type=int, default=4, help="instances in the shared-tier fleets")
    parser.add_argument("--timeout-ms", type=int, default=25, help="PREHEAT_CACHE_TIMEOUT_MS")
    parser.add_argument("--outage-seconds", type=float, default=8.0, help="length of the outage phase")
    parser.add_argument("--samples", type=int, default=7, help="fresh processes per cold-path figure")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", default="", help="comma-separated phases to skip: dynamodb,outage,cold")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--plot", type=Path, default=Path("build/bench/cache.png"))


def run(args: argparse.Namespace) -> int:
    with _capture_cache_logs() as logged:
        return _run(args, logged)


def _run(args: argparse.Namespace, logged: list[str]) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from functions.cache import CacheSettings, TextCache
    from functions.inference import manifest as manifests
    from functions.inference.runtime import open_task
    from functions.inference.tasks.embedding import EmbeddingTask
    from functions.inference.tasks.text import text_keyspace
    from scripts.cache_servers import MotoDynamo, RedisServer, redis_binary

    console = Console()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if not (args.model_dir / "manifest.json").exists():
        console.print(f"[red]{args.model_dir} has no model[/]: run `preheat build` (or `make model`) first")
        return 2
    if redis_binary() is None:
        console.print("[red]redis-server is not installed[/]: apt-get install -y redis-server")
        return 2
    manifest = manifests.load(args.model_dir)
    task = open_task(args.model_dir, manifest=manifest)
    if not isinstance(task, EmbeddingTask):
        console.print(f"[red]{args.model_dir} is a {manifest.task} model[/]: the cache bench replays texts to an embedder")
        return 2
    task.warmup()
    texts = corpus(args.distinct, args.seed)
    stream = zipf_stream(len(texts), args.requests, args.skew, args.seed)

    def build_cached(env: dict[str, str], **overrides: Any) -> Any:
        """An instance's cache in front of the model, configured as the runtime configures it: from settings."""
        # Writes as on Lambda (before answering), so each miss's latency includes its write.
        env = {"PREHEAT_CACHE_WRITE": "sync", **env}
        import msgspec

        settings = msgspec.structs.replace(
            CacheSettings.from_env(env), metrics_interval_seconds=3600.0, **overrides
        )
        cache = TextCache.open(
            text_keyspace(manifest, truncate=True), service="bench", namespace="PreheatBench", settings=settings,
            env=env,
        )
        assert cache is not None
        cache.wait_ready(10)
        return cache.wrap(task.model)

    phases: dict[str, Phase] = {}
    result: dict[str, Any] = {
        "model": manifest.name,
        "model_dir": str(args.model_dir),
        "requests": args.requests,
        "distinct": args.distinct,
        "skew": args.skew,
        "instances": args.instances,
        "timeout_ms": args.timeout_ms,
        "levels": {},
    }
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress, RedisServer() as redis:
        # The model alone, one call per distinct text, as a miss runs it (lengths matter).
        model_runs: list[float] = []
        sample = texts[:300]
        bar = progress.add_task("model", total=len(sample))
        for text in sample:
            started = time.perf_counter()
            task.model.rows([text])
            model_runs.append(time.perf_counter() - started)
            progress.advance(bar)
        result["model_run_p50_ms"] = ms(pct(model_runs, 50))
        result["model_run_p99_ms"] = ms(pct(model_runs, 99))

        memory = phases["memory"] = Phase("memory")
        replay(memory, [build_cached({})], texts, stream, progress)
        result["levels"]["memory"] = memory.level("memory", ())

        shared = phases["redis"] = Phase("redis")
        redis_env = {"PREHEAT_CACHE_REDIS_URL": redis.url, "PREHEAT_CACHE_TIMEOUT_MS": str(args.timeout_ms)}
        fleet_redis = [build_cached(redis_env) for _ in range(args.instances)]
        replay(shared, fleet_redis, texts, stream, progress)
        result["levels"]["redis"] = shared.level("redis", ("memory",))
        result["fleet_memory_redis"] = shared.level("memory", ())

        if "dynamodb" not in skip:
            with MotoDynamo() as dynamo:
                phase = phases["dynamodb"] = Phase("dynamodb")
                # moto takes milliseconds per call where DynamoDB takes a few: the budget is widened
                # so that this phase measures hit rates, not moto's speed.
                dynamo_env = {**dynamo.env(), "PREHEAT_CACHE_TIMEOUT_MS": str(max(args.timeout_ms, 1000))}
                fleet_ddb = [build_cached(dynamo_env) for _ in range(args.instances)]
                replay(phase, fleet_ddb, texts, stream, progress)
                result["levels"]["dynamodb"] = phase.level("dynamodb", ("memory",))
                if "cold" not in skip:
                    result["cold_path"] = cold_path(
                        args.samples, redis.url, dynamo.env(), args.model_dir.resolve(), progress
                    )
        elif "cold" not in skip:
            result["cold_path"] = cold_path(args.samples, redis.url, None, args.model_dir.resolve(), progress)

        if "outage" not in skip:
            result["outage"] = outage(args, texts, redis, progress, phases, build_cached)
            result["failed_requests_during_outage"] = result["outage"]["failed_requests"]

    mem = result["levels"]["memory"]
    if mem["hit_p50_ms"]:
        result["memory_hit_speedup_p50"] = round(result["model_run_p50_ms"] / mem["hit_p50_ms"], 1)

    print_report(console, result, args, logged)
    if args.plot:
        plot(args.plot, model_runs, phases)
        console.print(f"plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"figures: {args.json}")
    return 0 if result.get("failed_requests_during_outage", 0) == 0 else 1


@contextmanager
def _capture_cache_logs() -> Iterator[list[str]]:
    """The cache logs through the `preheat` logger; keep its lines for the report, off the progress
    bars, and put the logger back as it was afterwards."""
    import logging
    import re

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Ports and durations differ per line; the report counts lines of the same kind.
            text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", record.getMessage())
            lines.append(f"{record.levelname} " + re.sub(r"after [\d.]+ s", "after N s", text))

    log = logging.getLogger("preheat")
    handler, level, propagate = Keep(logging.INFO), log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
