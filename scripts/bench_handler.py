"""`preheat bench handler`: the Lambda handler's cold start and warm latency, beside the floor.

Cold: fresh processes, handler and floor interleaved, timed from spawn (CLOCK_MONOTONIC is shared by
all processes) to imports-and-model-ready and to the first response. Warm: one process holding both,
calls alternating, so both see the same CPU state. The floor is functions/baselines/floor.py: the
same model directory and session settings, no framework.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from layers import paths

COLD_HANDLER = """
import json, sys, time
from types import SimpleNamespace
started = time.monotonic()
import functions.inference.handler as h
ready = time.monotonic()
result = h.handler(json.loads(sys.argv[1]), SimpleNamespace(aws_request_id="bench"))
done = time.monotonic()
assert result["statusCode"] == 200, result
print(json.dumps({"started": started, "ready": ready, "done": done}))
"""

COLD_FLOOR = """
import json, sys, time
started = time.monotonic()
import functions.baselines.floor as f
ready = time.monotonic()
f.embed([json.loads(json.loads(sys.argv[1])["body"])["input"]])
done = time.monotonic()
print(json.dumps({"started": started, "ready": ready, "done": done}))
"""

WARM = """
import json, sys, time
from types import SimpleNamespace
import functions.inference.handler as h
import functions.baselines.floor as f
events = json.loads(sys.stdin.read())
texts = [json.loads(e["body"])["input"] for e in events]
ctx = SimpleNamespace(aws_request_id="bench")
warmup = int(sys.argv[1])
handler_ms, floor_ms = [], []
clock = time.perf_counter
for i, (event, text) in enumerate(zip(events, texts)):
    first_handler = i % 2 == 0
    for which in ((0, 1) if first_handler else (1, 0)):
        t = clock()
        if which == 0:
            status = h.handler(event, ctx)["statusCode"]
            assert status == 200, status
        else:
            f.embed([text])
        elapsed = (clock() - t) * 1000
        if i >= warmup:
            (handler_ms if which == 0 else floor_ms).append(elapsed)
print(json.dumps({"handler": handler_ms, "floor": floor_ms}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", type=Path, default=paths.DEFAULT_MODEL)
    parser.add_argument("--cold", type=int, default=15, help="fresh processes per side")
    parser.add_argument("--warm", type=int, default=600, help="measured warm calls per side (>= 500)")
    parser.add_argument("--threads", type=int, default=1, help="PREHEAT_THREADS for both sides")
    parser.add_argument("--json", type=Path, default=Path("build/bench/handler.json"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _summary(cold: list[dict[str, float]], warm: list[float]) -> dict[str, float]:
    to_first = [s["done"] - s["spawned"] for s in cold]
    to_ready = [s["ready"] - s["spawned"] for s in cold]
    return {
        "cold_p50_ms": statistics.median(to_first) * 1000,
        "cold_p99_ms": percentile(to_first, 99) * 1000,
        "init_p50_ms": statistics.median(to_ready) * 1000,
        "warm_p50_ms": statistics.median(warm),
        "warm_p99_ms": percentile(warm, 99),
    }


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from scripts.bench_texts import describe, distinct_texts
    from scripts.events import function_url_event

    console = Console()
    model_dir = args.model_dir.resolve()
    if not (model_dir / "manifest.json").is_file():
        console.print(f"[red]{model_dir} has no model[/]: run `preheat build` first")
        return 2
    env = {
        **os.environ,
        "PREHEAT_MODEL_DIR": str(model_dir),
        "PREHEAT_THREADS": str(args.threads),
        "PREHEAT_CACHE_MEMORY_BYTES": "0",  # every call must run the model, as the floor does
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
    }

    def event(text: str) -> dict[str, Any]:
        body = json.dumps({"input": text, "model": "minilm"}).encode()
        return function_url_event("POST", "/v1/embeddings", body, {"content-type": "application/json"})

    first = json.dumps(event("A short sentence for the first request of a fresh instance."))
    samples: dict[str, list[dict[str, float]]] = {"handler": [], "floor": []}
    warmup = 50
    # Distinct texts (the handler's cache is off too): every call runs the model, as the floor's do.
    texts = distinct_texts(args.warm + warmup)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("cold starts (fresh processes)", total=2 * args.cold)
        for i in range(args.cold):
            order = ("handler", "floor") if i % 2 == 0 else ("floor", "handler")
            for side in order:
                code = COLD_HANDLER if side == "handler" else COLD_FLOOR
                spawned = time.monotonic()
                out = subprocess.run(
                    [sys.executable, "-c", code, first], env=env, capture_output=True, text=True, timeout=120
                )
                if out.returncode != 0:
                    console.print(out.stderr[-2000:])
                    return 1
                sample = json.loads(out.stdout.strip().splitlines()[-1])
                sample["spawned"] = spawned
                samples[side].append(sample)
                progress.advance(task)
        progress.add_task(f"warm: {args.warm} calls per side, alternating", total=None)
        out = subprocess.run(
            [sys.executable, "-c", WARM, str(warmup)],
            input=json.dumps([event(t) for t in texts]),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            console.print(out.stderr[-2000:])
            return 1
        warm = json.loads(out.stdout.strip().splitlines()[-1])
    handler = _summary(samples["handler"], warm["handler"])
    floor = _summary(samples["floor"], warm["floor"])
    result = {
        "model_dir": str(model_dir),
        "threads": args.threads,
        "cold_samples": args.cold,
        "warm_calls": len(warm["handler"]),
        "warm_texts": describe(),
        "handler": handler,
        "floor": floor,
        "cold_ratio_p50": handler["cold_p50_ms"] / floor["cold_p50_ms"],
        "warm_overhead_p50_ms": handler["warm_p50_ms"] - floor["warm_p50_ms"],
        "targets": {"cold_ratio_p50_max": 1.5, "warm_overhead_p50_ms_max": 0.3},
    }
    table = Table(title=f"Lambda handler vs floor — {model_dir.name}, {args.threads} thread(s), ms")
    for column in ("", "cold p50", "cold p99", "init p50", "warm p50", "warm p99"):
        table.add_column(column, justify="right")
    for name, row in (("handler", handler), ("floor", floor)):
        table.add_row(
            name,
            *(
                f"{row[k]:.2f}"
                for k in ("cold_p50_ms", "cold_p99_ms", "init_p50_ms", "warm_p50_ms", "warm_p99_ms")
            ),
        )
    console.print(table)
    ok_cold = result["cold_ratio_p50"] <= 1.5
    ok_warm = result["warm_overhead_p50_ms"] <= 0.3
    console.print(
        f"cold start p50: handler/floor = [{'green' if ok_cold else 'red'}]{result['cold_ratio_p50']:.2f}x[/] (target <= 1.5x); "
        f"warm p50: handler - floor = [{'green' if ok_warm else 'red'}]{result['warm_overhead_p50_ms']:+.3f} ms[/] (target <= 0.3 ms)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    return 0
