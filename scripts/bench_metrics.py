"""`preheat bench metrics`: what bringing the cache counters out costs the warm path, two ways.

An instance that serves a burst and is never called again must still report its cache counters.
Two ways to get there, measured in one process on the default model, calls alternating so both see
the same CPU state:

- `environment-end` (what preheat does): counters summed in memory, flushed by the first request a
  second after the last flush (PREHEAT_CACHE_METRICS_INTERVAL_MS=1000) and by Lambda's shutdown phase
  (functions/metrics/shutdown.py), which costs a request nothing;
- `per-request`: a cache blob after every request (interval 0), so nothing is ever pending.

Two request kinds: `hit` (a text the instance already answered: the in-process cache answers, the
path where a blob's cost shows) and `miss` (a new text: the model runs). The figures are the
handler's time per call (`handler(event, context)`, EMF lines written to a pipe as on Lambda).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from layers import paths

VARIANTS = {"environment-end": 1.0, "per-request": 0.0}  # -> CacheMetrics.interval (seconds)

WARM = """
import json, sys, time
from types import SimpleNamespace
import functions.inference.handler as h
metrics = h.RUNTIME.task.source.metrics  # the cache in front of the model (functions/cache/tiered.py)
plan = json.loads(sys.stdin.read())
events, intervals = plan["events"], plan["variants"]
ctx = SimpleNamespace(aws_request_id="bench")
names = list(intervals)
times = {kind: {n: [] for n in names} for kind in ("hit", "miss")}
seen = {"hit": 0, "miss": 0, "warmup": 0}
clock = time.perf_counter
for kind, event in events:
    # Who goes first alternates per request kind: the first call after a model run finds cold caches.
    seen[kind] += 1
    order = names if seen[kind] % 2 == 0 else names[::-1]
    for name in order:
        metrics.interval = intervals[name]
        e = event[name] if isinstance(event, dict) and name in event else event
        t = clock()
        status = h.handler(e, ctx)["statusCode"]
        elapsed = (clock() - t) * 1e6
        assert status == 200, status
        if kind != "warmup":
            times[kind][name].append(elapsed)
print(json.dumps(times))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=paths.DEFAULT_MODEL)
    parser.add_argument("--calls", type=int, default=1500, help="measured calls per variant and request kind")
    parser.add_argument("--json", type=Path, default=Path("build/bench/metrics.json"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from scripts.events import function_url_event

    console = Console()
    model_dir = args.model_dir.resolve()
    if not (model_dir / "manifest.json").is_file():
        console.print(f"[red]{model_dir} has no model[/]: run `preheat build` first")
        return 2
    if args.calls < 100:
        raise SystemExit("--calls must be >= 100 (percentiles of fewer calls say little)")

    def event(text: str) -> dict[str, Any]:
        body = json.dumps({"input": text, "model": "minilm"}).encode()
        return function_url_event("POST", "/v1/embeddings", body, {"content-type": "application/json"})

    repeated = [f"A text this instance has answered before, number {i}." for i in range(20)]
    plan: list[tuple[str, Any]] = [("warmup", event(t)) for t in repeated]  # into the in-process cache
    for i in range(args.calls):
        plan.append(("hit", event(repeated[i % len(repeated)])))
        # A miss must be a new text for every variant, or the second one would hit.
        plan.append(("miss", {name: event(f"New text {i} for {name}: how warm is it?") for name in VARIANTS}))
    env = {
        **os.environ,
        "PREHEAT_MODEL_DIR": str(model_dir),
        "PREHEAT_THREADS": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "AWS_LAMBDA_FUNCTION_NAME": "bench-metrics",  # Lambda's side of every mode decision
    }
    env.pop("AWS_LAMBDA_RUNTIME_API", None)  # no Runtime API here: no extension to register
    with console.status(f"{args.calls} calls per variant and kind, alternating, in one process…"):
        out = subprocess.run(
            [sys.executable, "-c", WARM],
            input=json.dumps({"events": plan, "variants": VARIANTS}),
            env=env, capture_output=True, text=True, timeout=1800,
        )
    if out.returncode != 0:
        console.print(out.stderr[-2000:])
        return 1
    times: dict[str, dict[str, list[float]]] = json.loads(out.stdout.strip().splitlines()[-1])
    result: dict[str, Any] = {"model_dir": str(model_dir), "calls": args.calls, "variants": VARIANTS, "kinds": {}}
    table = Table(title="handler time per call, µs (cache counters brought out two ways)")
    for column in ("request", "variant", "p50", "p99", "p50 ratio to environment-end"):
        table.add_column(column, justify="right")
    for kind, by_variant in times.items():
        base = percentile(by_variant["environment-end"], 50)
        rows = {}
        for name, values in by_variant.items():
            p50, p99 = percentile(values, 50), percentile(values, 99)
            rows[name] = {"p50_us": p50, "p99_us": p99, "p50_ratio": p50 / base}
            table.add_row(kind, name, f"{p50:.1f}", f"{p99:.1f}", f"{p50 / base:.3f}x")
        result["kinds"][kind] = rows
    console.print(table)
    hit = result["kinds"]["hit"]
    console.print(
        f"a cache hit costs {hit['per-request']['p50_us'] - hit['environment-end']['p50_us']:+.1f} µs p50 more when "
        "every request writes its cache blob; flushing at the end of the environment costs a request nothing"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0
