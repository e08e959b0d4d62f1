"""What the reliability runs are pointed at: the app under uvicorn, and one twin with a function per
scenario, all on 127.0.0.1.

Twin functions (each its own instances and HTTPS Function URL):
- TARGET: the embedding model, reserved concurrency `reserved`, no in-process cache (load, fuzzing,
  hostile input);
- TENSOR: a tensor model (NaN/Inf, shapes);
- VICTIM: the embedding model with one provisioned instance (killed mid-request, replaced);
- BROKEN: a copy of the model with its weights truncated (init must fail, nothing served);
- CACHED: the embedding model on a Redis shared tier with no in-process level (the tier is killed and
  paused under load);
- WARMER: warmers.warmer.handler aimed at TARGET (fan-outs larger than TARGET's reserved concurrency);
- CLASSIFIER, RERANKER: a sequence classifier and a cross-encoder, when given (/v1/classify, /v1/rerank).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.twin.config import FunctionSpec, TwinConfig, inference_function

TARGET = "rel-target"
TENSOR = "rel-tensor"
VICTIM = "rel-victim"
BROKEN = "rel-broken"
CACHED = "rel-cached"
WARMER = "rel-warmer"
CLASSIFIER = "rel-classifier"
RERANKER = "rel-reranker"

MAX_REQUEST_BYTES = 2 * 1024 * 1024  # under Lambda's 6 MB, so that both limits can be shown apart


@dataclass(frozen=True)
class StackSpec:
    root: Path
    embed_dir: Path | None  # None: the default model (from the built layers when they exist)
    tensor_dir: Path
    broken_dir: Path
    state_dir: Path
    redis_url: str | None = None
    reserved: int = 2
    max_request_bytes: int = MAX_REQUEST_BYTES
    env: Mapping[str, str] = field(default_factory=dict)  # for every inference function (e.g. PREHEAT_THREADS)
    warm_max_concurrency: int = 8
    memory_mb: int = 2048
    max_instances: int = 14
    classifier_dir: Path | None = None  # a text-classification model (labels): fuzzed through /v1/classify
    reranker_dir: Path | None = None  # a cross-encoder (pairs, one score): fuzzed through /v1/rerank


def twin_config(spec: StackSpec) -> TwinConfig:
    base = {"PREHEAT_MAX_REQUEST_BYTES": str(spec.max_request_bytes), **spec.env}

    def model(name: str, model_dir: Path | None, **overrides: Any) -> FunctionSpec:
        env = {**base, "POWERTOOLS_SERVICE_NAME": name, **overrides.pop("env", {})}
        return inference_function(spec.root, name=name, model_dir=model_dir, env=env, memory_mb=spec.memory_mb,
                                  **overrides)

    functions = [
        # No in-process cache: under load, every answer is the model's own run (the cache's levels are
        # exercised by CACHED, and by the cache tier's tests).
        model(TARGET, spec.embed_dir, reserved_concurrency=spec.reserved, env={"PREHEAT_CACHE_MEMORY_BYTES": "0"}),
        model(TENSOR, spec.tensor_dir),
        model(VICTIM, spec.embed_dir, provisioned={"live": 1}),
        model(BROKEN, spec.broken_dir),
    ]
    for name, model_dir in ((CLASSIFIER, spec.classifier_dir), (RERANKER, spec.reranker_dir)):
        if model_dir is not None:
            functions.append(model(name, model_dir))
    if spec.redis_url:
        functions.append(
            model(CACHED, spec.embed_dir, env={"PREHEAT_CACHE_REDIS_URL": spec.redis_url, "PREHEAT_CACHE_MEMORY_BYTES": "0"})
        )
    functions.append(
        FunctionSpec(
            WARMER,
            "warmers.warmer.handler",
            spec.root,
            env={
                "PREHEAT_WARM_FUNCTION": TARGET,
                "PREHEAT_WARM_QUALIFIER": "live",
                "PREHEAT_WARM_MAX_CONCURRENCY": str(spec.warm_max_concurrency),
                "PREHEAT_RETRY_ATTEMPTS": "2",
                "PREHEAT_RETRY_BASE_MS": "50",
                "PREHEAT_RETRY_CAP_MS": "200",
            },
            memory_mb=256,
            timeout_s=60,
            url_qualifier=None,
        )
    )
    return TwinConfig(
        functions=tuple(functions), state_dir=spec.state_dir, max_instances=spec.max_instances
    ).validate()


@contextlib.contextmanager
def uvicorn_app(app: Any, timeout: float = 30.0) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port) in a thread; yields its base URL; always stops."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
