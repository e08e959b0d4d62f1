"""The cache bench's cold path: what each cache choice adds to a cold start, measured in fresh
interpreters that run this package's child_* modules (`python -m`)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Everything the handler has imported before the cache is opened (numpy, onnxruntime, tokenizers,
# msgspec, the EMF writer): preloaded before the clock starts, so each figure is what it adds on top.
PRELOAD = (
    "import functions.inference.dataplane, functions.inference.tasks.embedding, "
    "functions.inference.settings, functions.metrics"
)
CHILD_IMPORT = "scripts.bench_cache.child_import"
CHILD_FIRST_CALL = "scripts.bench_cache.child_first_call"
CHILD_HANDLER = "scripts.bench_cache.child_handler"


def fresh_handler(samples: int, env: dict[str, str]) -> dict[str, float] | None:
    """Lambda-like cold starts in fresh processes: the handler's import (init: model, cache, tier
    connect) and its first request, a miss whose answer is written to the tier before it returns."""
    full = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full.update(env, AWS_LAMBDA_FUNCTION_NAME="preheat-bench", PREHEAT_THREADS="1")
    init, first = [], []
    for i in range(samples + 1):
        out = subprocess.run(
            [sys.executable, "-m", CHILD_HANDLER, str(time.time_ns() + i)],
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


def fresh_ms(module: str, samples: int, *args: str) -> float | None:
    """Median over fresh interpreters. Bytecode is written and used, as a deployed package ships it
    (a first untimed run compiles): with PYTHONDONTWRITEBYTECODE every import would recompile."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    values = []
    for i in range(samples + 1):
        out = subprocess.run(
            [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120, env=env
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
        out["import_ms"][name] = fresh_ms(CHILD_IMPORT, samples, preload, statement)
        progress.advance(task)
    # The clients by the names scripts/bench_cache/child_first_call.py knows them by.
    calls = {
        "dynamodb, this client: import, sign, connect, BatchGetItem": ("dynamodb-ours", dynamo_url),
        "dynamodb, boto3: import, client, BatchGetItem": ("dynamodb-boto3", dynamo_url),
        "redis, this client: import, connect, PING, GET": ("redis-ours", redis_url),
        "redis, redis-py: import, connect, PING, GET": ("redis-py", redis_url),
    }
    for name, (client, url) in calls.items():
        out["first_call_ms"][name] = fresh_ms(CHILD_FIRST_CALL, samples, PRELOAD, client, url) if url else None
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
