"""`preheat bench cache`: replay a Zipf-distributed request stream through the cache tier.

Phases, all against the real default model (build/models/minilm) on this machine:
  model      the model alone, one text per call: what a miss costs before any cache work
  memory     one instance, in-process LRU only (the default deployment)
  redis      a fleet of instances (each its own LRU, requests spread round-robin as a load
             balancer would) sharing a real redis-server on 127.0.0.1
  dynamodb   the same fleet sharing moto's DynamoDB on 127.0.0.1 (moto is a Python server: its
             latency says nothing about DynamoDB's; hit rates and correctness still hold)
  outage     a fleet with a small LRU keeps serving while redis-server is killed (SIGKILL) and,
             later, started again on the same port: failed requests, latency meanwhile, recovery
  cold path  import cost of each client, and init + first shared-tier call, in fresh processes

Per level: hit_rate = hits / lookups that reached the level; share = answers served by it / requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layers import paths

WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her "
    "long make thing see him two has look more day could go come did number sound no most people my "
    "over know water than call first who may down side been now find any new work part take get "
    "place made live where after back little only round man year came show every good me give our "
    "under name very through just form sentence great think say help low line differ turn cause much "
    "mean before move right boy old too same tell does set three want air well also play small end "
    "put home read hand port large spell add even land here must big high such follow act why ask "
    "men change went light kind off need house picture try us again animal point mother world near "
    "build self earth father head stand own page should country found answer school grow study still "
    "learn plant cover food sun four between state keep eye never last let thought city tree cross "
    "farm hard start might story saw far sea draw left late run while press close night real life"
).split()


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


# -- the stream -----------------------------------------------------------------------------------


def corpus(n: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        words = rng.choice(WORDS, size=int(rng.integers(6, 25)))
        text = " ".join(words).capitalize() + "."
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def zipf_stream(n_items: int, n_requests: int, skew: float, seed: int) -> list[int]:
    """Indices into the corpus; rank k (1-based) drawn with probability proportional to 1/k^skew."""
    import numpy as np

    weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** skew
    rng = np.random.default_rng(seed + 1)
    return [int(i) for i in rng.choice(n_items, size=n_requests, p=weights / weights.sum())]


# -- figures --------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 4)


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)  # served_by -> seconds
    failures: int = 0

    def add(self, served_by: str, seconds: float) -> None:
        self.latencies.setdefault(served_by, []).append(seconds)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + self.failures

    def level(self, level: str, before: tuple[str, ...]) -> dict[str, Any]:
        """Figures of one level: lookups reaching it are the requests no earlier level answered."""
        hits = self.latencies.get(level, [])
        misses = self.latencies.get("miss", [])
        reached = self.requests - sum(len(self.latencies.get(b, [])) for b in before)
        return {
            "requests": self.requests,
            "hits": len(hits),
            "hit_rate": round(len(hits) / reached, 4) if reached else None,
            "share": round(len(hits) / self.requests, 4) if self.requests else None,
            "hit_p50_ms": ms(pct(hits, 50)),
            "hit_p99_ms": ms(pct(hits, 99)),
            "miss_p50_ms": ms(pct(misses, 50)),
            "miss_p99_ms": ms(pct(misses, 99)),
        }


def replay(phase: Phase, fleet: list[Any], texts: list[str], stream: list[int], progress: Any) -> None:
    clock = time.perf_counter
    task = progress.add_task(phase.name, total=len(stream))
    for i, index in enumerate(stream):
        cached = fleet[i % len(fleet)]
        started = clock()
        try:
            got = cached.rows([texts[index]])
        except Exception:
            phase.failures += 1
        else:
            phase.add(got.served_by, clock() - started)
        progress.advance(task)


# -- cold path ------------------------------------------------------------------------------------

# Everything the handler has imported before the cache is opened (numpy, onnxruntime, tokenizers,
# msgspec, the EMF writer): preloaded before the clock starts, so each figure is what it adds on top.
PRELOAD = (
    "import functions.inference.dataplane, functions.inference.tasks.embedding, "
    "functions.inference.settings, functions.metrics"
)

IMPORT = """
import time, json
{preload}
t = time.perf_counter()
{statement}
print(json.dumps((time.perf_counter() - t) * 1000))
"""

FIRST_CALL_OURS = """
import time, json, sys
{preload}
t = time.perf_counter()
from functions.cache.dynamodb import DynamoTier
tier = DynamoTier("preheat-cache", region="us-east-1", endpoint_url=sys.argv[1],
                  env={{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}})
tier.prepare(10)  # credentials, connect, one BatchGetItem
print(json.dumps((time.perf_counter() - t) * 1000))
"""

FIRST_CALL_BOTO3 = """
import time, json, sys
{preload}
t = time.perf_counter()
import boto3
client = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
client.batch_get_item(RequestItems={{"preheat-cache": {{"Keys": [{{"key": {{"S": "k"}}}}]}}}})
print(json.dumps((time.perf_counter() - t) * 1000))
"""

FIRST_CALL_REDIS_OURS = """
import time, json, sys
{preload}
t = time.perf_counter()
from functions.cache.redis import RedisTier
tier = RedisTier(sys.argv[1])
tier.prepare(10)
tier.get_many(["k"], time.monotonic() + 10)
print(json.dumps((time.perf_counter() - t) * 1000))
"""

FIRST_CALL_REDIS_PY = """
import time, json, sys
{preload}
t = time.perf_counter()
import redis
client = redis.Redis.from_url(sys.argv[1])
client.ping()
client.get("k")
print(json.dumps((time.perf_counter() - t) * 1000))
"""


HANDLER = """
import json, time, sys
from types import SimpleNamespace
t = time.perf_counter()
import functions.inference.handler as h
ready = time.perf_counter()
body = json.dumps({{"input": "a sentence nobody has sent before, number " + sys.argv[1],
                   "model": h.RUNTIME.manifest.name}})
event = {{"version": "2.0", "rawPath": "/v1/embeddings", "rawQueryString": "", "body": body,
         "headers": {{"content-type": "application/json"}}, "isBase64Encoded": False,
         "requestContext": {{"http": {{"method": "POST", "path": "/v1/embeddings"}}}}}}
result = h.handler(event, SimpleNamespace(aws_request_id="bench"))
done = time.perf_counter()
assert result["statusCode"] == 200 and result["headers"]["x-preheat-cache"] == "miss", result
print(json.dumps([(ready - t) * 1000, (done - ready) * 1000]))
"""


def fresh_handler(samples: int, env: dict[str, str]) -> dict[str, float] | None:
    """Lambda-like cold starts in fresh processes: the handler's import (init: model, cache, tier
    connect) and its first request, a miss whose answer is written to the tier before it returns."""
    full = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full.update(env, AWS_LAMBDA_FUNCTION_NAME="preheat-bench", PREHEAT_THREADS="1")
    init, first = [], []
    for i in range(samples + 1):
        out = subprocess.run(
            [sys.executable, "-c", HANDLER.format(), str(time.time_ns() + i)],
            capture_output=True,
            text=True,
            timeout=120,
            env=full,
        )
        if out.returncode != 0:
            return None
        if i:
            a, b = json.loads(out.stdout.strip().splitlines()[-1])
            init.append(a)
            first.append(b)
    return {
        "init_ms": round(statistics.median(init), 1),
        "first_request_ms": round(statistics.median(first), 1),
    }


def fresh_ms(code: str, samples: int, *args: str) -> float | None:
    """Median over fresh interpreters. Bytecode is written and used, as a deployed package ships it
    (a first untimed run compiles): with PYTHONDONTWRITEBYTECODE every import would recompile."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    values = []
    for i in range(samples + 1):
        out = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env
        )
        if out.returncode != 0:
            return None  # e.g. redis-py is not installed
        if i:
            values.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(values), 1)


def cold_path(
    samples: int,
    redis_url: str | None,
    dynamo_env: dict[str, str] | None,
    model_dir: Path,
    progress: Any,
) -> dict[str, Any]:
    """Milliseconds each choice adds to a cold start, on top of what the runtime imports anyway."""
    imports = {
        "functions.cache (default: in-process level)": ("", "import functions.cache"),
        "functions.cache.redis (this client)": ("import functions.cache", "import functions.cache.redis"),
        "functions.cache.dynamodb (this client)": (
            "import functions.cache",
            "import functions.cache.dynamodb",
        ),
        "redis-py": ("", "import redis"),
        "botocore.session": ("", "import botocore.session"),
        "boto3": ("", "import boto3"),
    }
    dynamo_url = dynamo_env["AWS_ENDPOINT_URL_DYNAMODB"] if dynamo_env else None
    task = progress.add_task("cold path", total=len(imports) + 4 + 3)
    out: dict[str, Any] = {"import_ms": {}, "first_call_ms": {}, "handler": {}}
    for name, (extra, statement) in imports.items():
        preload = PRELOAD + ("\n" + extra if extra else "")
        out["import_ms"][name] = fresh_ms(IMPORT.format(preload=preload, statement=statement), samples)
        progress.advance(task)
    calls = {
        "dynamodb, this client: import, sign, connect, BatchGetItem": (FIRST_CALL_OURS, dynamo_url),
        "dynamodb, boto3: import, client, BatchGetItem": (FIRST_CALL_BOTO3, dynamo_url),
        "redis, this client: import, connect, PING, GET": (FIRST_CALL_REDIS_OURS, redis_url),
        "redis, redis-py: import, connect, PING, GET": (FIRST_CALL_REDIS_PY, redis_url),
    }
    for name, (code, url) in calls.items():
        out["first_call_ms"][name] = fresh_ms(code.format(preload=PRELOAD), samples, url) if url else None
        progress.advance(task)
    handlers: dict[str, dict[str, str] | None] = {
        "in-process level only": {},
        "+ redis": {"PREHEAT_CACHE_REDIS_URL": redis_url} if redis_url else None,
        # moto answers slowly: the widened budget lets the first request's write land.
        "+ dynamodb (moto)": {**dynamo_env, "PREHEAT_CACHE_TIMEOUT_MS": "1000"} if dynamo_env else None,
    }
    for name, env in handlers.items():
        out["handler"][name] = (
            fresh_handler(samples, {"PREHEAT_MODEL_DIR": str(model_dir), **env}) if env is not None else None
        )
        progress.advance(task)
    return out


# -- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    with _capture_cache_logs() as logged:
        return _run(args, logged)


def _run(args: argparse.Namespace, logged: list[str]) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

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

    table = Table(
        title=f"preheat bench cache — {manifest.name}, skew {args.skew}, {args.requests} requests/phase"
    )
    for column in ("level", "hit rate", "share", "hit p50", "hit p99", "miss p50", "miss p99"):
        table.add_column(column, justify="right")

    def fmt(value: Any, unit: str = "") -> str:
        return "—" if value is None else f"{value:.3f}{unit}" if unit else f"{value:.1%}"

    table.add_row(
        "model run",
        "",
        "",
        fmt(result["model_run_p50_ms"], " ms"),
        fmt(result["model_run_p99_ms"], " ms"),
        "",
        "",
    )
    for name, row in result["levels"].items():
        table.add_row(
            name,
            fmt(row["hit_rate"]),
            fmt(row["share"]),
            fmt(row["hit_p50_ms"], " ms"),
            fmt(row["hit_p99_ms"], " ms"),
            fmt(row["miss_p50_ms"], " ms"),
            fmt(row["miss_p99_ms"], " ms"),
        )
    console.print(table)
    if "memory_hit_speedup_p50" in result:
        console.print(
            f"in-process hit vs model run at p50: [bold]{result['memory_hit_speedup_p50']}x[/] (target >= 20x)"
        )
    redis_row = result["levels"]["redis"]
    if redis_row["hit_p50_ms"] is not None:
        console.print(
            f"Redis hit p50 on 127.0.0.1: [bold]{redis_row['hit_p50_ms']:.3f} ms[/] (target < 1 ms)"
        )
    if "outage" in result:
        o = result["outage"]
        console.print(
            f"outage ({o['tier']} killed for {o['down_seconds']:.1f} s): {o['requests']} requests, "
            f"[bold]{o['failed_requests']} failed[/] (target 0), p50 {o['p50_ms']:.3f} ms, p99 {o['p99_ms']:.3f} ms, "
            f"max {o['max_ms']:.1f} ms; longest wait on Redis {o['longest_tier_wait_ms']:.1f} ms "
            f"(timeout {args.timeout_ms} ms); {o['redis_hits_after_restart']} Redis hits after the restart"
        )
    if "cold_path" in result:
        cold = Table(title="cold path (fresh processes, median ms)")
        cold.add_column("what")
        cold.add_column("ms", justify="right")
        for group in ("import_ms", "first_call_ms"):
            for name, value in result["cold_path"][group].items():
                cold.add_row(f"{group.split('_')[0]}: {name}", "—" if value is None else f"{value:.1f}")
        for name, pair in result["cold_path"]["handler"].items():
            for key, label in (("init_ms", "init"), ("first_request_ms", "first request (miss + write)")):
                cold.add_row(f"handler {label}: {name}", "—" if pair is None else f"{pair[key]:.1f}")
        console.print(cold)
    if logged:
        console.print(f"cache log lines ({len(logged)}, one per instance per outage and recovery):")
        for line in sorted(set(logged)):
            console.print(f"  {logged.count(line)} x {line}")
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


def outage(
    args: argparse.Namespace,
    texts: list[str],
    redis: Any,
    progress: Any,
    phases: dict[str, Phase],
    build_cached: Any,
) -> dict[str, Any]:
    """Fresh instances with a small LRU (so Redis keeps being asked) serve the stream for
    --outage-seconds; redis-server is killed (SIGKILL) at 1/4 of that time and started again on the
    same port at 1/2, leaving time for the breakers' probes (1 s, then 2 s, ...) to find it back."""
    stream = zipf_stream(len(texts), 100_000, args.skew, args.seed + 10)
    env = {
        "PREHEAT_CACHE_REDIS_URL": redis.url,
        "PREHEAT_CACHE_TIMEOUT_MS": str(args.timeout_ms),
        "PREHEAT_CACHE_MEMORY_BYTES": str(64 * 1024),
    }
    fleet = [build_cached(env) for _ in range(args.instances)]
    phase = phases["outage"] = Phase("outage")
    down: list[float] = []
    after_hits = failures = 0
    total = args.outage_seconds
    kill_at, restart_at = total / 4, total / 2
    killed = restarted = 0.0
    bar = progress.add_task("outage", total=round(total, 1))
    began = time.monotonic()
    i = 0
    while (now := time.monotonic() - began) < total:
        if not killed and now >= kill_at:
            redis.kill()
            killed = now
        if killed and not restarted and now >= restart_at:
            redis.start(redis.port)
            restarted = time.monotonic() - began
        text = texts[stream[i % len(stream)]]
        cached = fleet[i % len(fleet)]
        i += 1
        started = time.perf_counter()
        try:
            got = cached.rows([text])
        except Exception:
            failures += 1
            continue
        elapsed = time.perf_counter() - started
        phase.add(got.served_by, elapsed)
        if killed and not restarted:
            down.append(elapsed)
        elif restarted and got.served_by == "redis":
            after_hits += 1
        progress.update(bar, completed=round(now, 1))
    progress.update(bar, completed=round(total, 1))
    return {
        "tier": "redis",
        "requests": i,
        "failed_requests": failures,
        "down_requests": len(down),
        "down_seconds": round(restarted - killed, 2),
        "p50_ms": ms(pct(down, 50)),
        "p99_ms": ms(pct(down, 99)),
        "max_ms": ms(max(down) if down else None),
        "redis_hits_after_restart": after_hits,
        # The most any request of the phase waited on Redis (connects refused, probes, timeouts):
        # the bound PREHEAT_CACHE_TIMEOUT_MS promises, apart from the model's own time.
        "longest_tier_wait_ms": ms(max(c.shared.longest_call for c in fleet if c.shared is not None)),
    }


def plot(path: Path, model_runs: list[float], phases: dict[str, Phase]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # Colour says which level answered, line style which phase: hits of one level line up.
    colours = {"memory": "tab:green", "redis": "tab:red", "dynamodb": "tab:purple", "miss": "tab:orange"}
    styles = {"memory": "-", "redis": "--", "dynamodb": "-.", "outage": ":"}
    fig, ax = plt.subplots(figsize=(9, 5))
    ordered = np.sort(np.asarray(model_runs) * 1000)
    ax.plot(
        ordered, np.linspace(0, 1, len(ordered)), color="black", lw=2, label=f"model alone (n={len(ordered)})"
    )
    for name, phase in phases.items():
        for served_by, values in sorted(phase.latencies.items()):
            if len(values) < 5:
                continue
            ordered = np.sort(np.asarray(values) * 1000)
            ax.plot(
                ordered,
                np.linspace(0, 1, len(ordered)),
                color=colours.get(served_by, "tab:gray"),
                linestyle=styles.get(name, "-"),
                label=f"{name} phase: {served_by} (n={len(ordered)})",
            )
    ax.set_xscale("log")
    ax.set_xlabel("latency per request (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("preheat cache tier: latency by the level that answered")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
