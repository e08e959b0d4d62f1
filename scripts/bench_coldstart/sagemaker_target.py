"""The `sagemaker` target of `preheat bench coldstart`: the lambda target's functions, plus a SageMaker
Serverless endpoint in the same twin serving the same model with real `serve` containers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scripts.bench_coldstart.lambda_target import TwinTarget, bench_model, lambda_twin
from scripts.bench_coldstart.samples import Sample, Variant, Warm

SAGEMAKER_ENDPOINT = "bench-sagemaker"


class SageMakerTwinTarget:
    """The Lambda functions (delegated to the lambda target), plus a SageMaker Serverless endpoint in the
    same twin, which `bench` measures."""

    def __init__(self, functions: TwinTarget, endpoint: str, model_dir: str) -> None:
        self.functions = functions
        self.names = functions.names
        self.twin = functions.twin
        self.body = functions.body
        self.requests = functions.models["default"]
        self._sent = 0
        self.endpoint = endpoint
        self.model_dir = model_dir
        self.runtime = self.twin.boto3_client(
            "sagemaker-runtime", retries={"total_max_attempts": 1}, read_timeout=300
        )

    def describe(self, name: str) -> str:
        return self.functions.describe(name)

    def cold(self, name: str) -> Sample:
        return self.functions.cold(name)

    def warm(self, name: str, text: str) -> Warm:
        return self.functions.warm(name, text)

    def phases(self, names: tuple[str, ...]) -> dict[str, Any]:
        return self.functions.phases(names)

    def _invoke(self, text: str | None = None) -> float:
        from layers.model_requests import INVOCATIONS

        self._sent += 1  # tensor models: new inputs each time; text tasks: `text`
        payload = self.requests.request(self._sent, INVOCATIONS, text=self.body["input"] if text is None else text).json()
        started = time.perf_counter()
        response = self.runtime.invoke_endpoint(
            EndpointName=self.endpoint,
            Body=payload,
            ContentType="application/json",
            Accept="application/json",
        )
        response["Body"].read()
        return (time.perf_counter() - started) * 1000

    def sagemaker_cold(self) -> tuple[float, dict[str, float]]:
        self.twin.control("POST", f"endpoints/{self.endpoint}/reset")
        ms = self._invoke()
        _, records = self.twin.invocations(0, self.endpoint)
        if not records or not records[-1]["cold"]:
            raise RuntimeError(f"{self.endpoint}: the request after a reset was not a cold start")
        containers = next(
            e for e in self.twin.control("GET", "endpoints")["endpoints"] if e["name"] == self.endpoint
        )["variants"][0]["containers"]
        setup = next(c["setup"] for c in containers if c["id"] == records[-1]["instance_id"])
        return ms, setup

    def bench(self, cold: int, warm: int, progress: Any) -> dict[str, Any]:
        from scripts.twin.traffic import percentile

        task = progress.add_task("SageMaker cold starts", total=cold)
        colds: list[float] = []
        setups: list[dict[str, float]] = []
        for _ in range(cold):
            ms, setup = self.sagemaker_cold()
            colds.append(ms)
            setups.append(setup)
            progress.advance(task)
        from scripts.bench_texts import distinct_texts

        task = progress.add_task("SageMaker warm requests", total=warm)
        self._invoke()  # untimed: the last cold container is warm now
        warms = []
        for text in distinct_texts(warm, seed=17):  # texts the endpoint has not seen: the model runs
            warms.append(self._invoke(text))
            progress.advance(task)
        ready = [s["ready_ms"] for s in setups]
        summary = {
            "ping_ready_p50_ms": round(percentile(ready, 50), 2),
            "ping_ready_p99_ms": round(percentile(ready, 99), 2),
            "listening_p50_ms": round(percentile([s["listening_ms"] for s in setups], 50), 2),
            "cold_p50_ms": round(percentile(colds, 50), 2),
            "cold_p99_ms": round(percentile(colds, 99), 2),
            "warm_p50_ms": round(percentile(warms, 50), 3),
            "warm_p99_ms": round(percentile(warms, 99), 3),
            "cold_n": len(colds),
            "warm_n": len(warms),
            "what": f"SageMaker Serverless endpoint {self.endpoint}: `serve` containers, {self.model_dir}, "
            "boto3 invoke_endpoint through the twin",
        }
        return {"sagemaker": summary, "_sagemaker_series": {"cold": colds, "ready": ready, "warm": warms}}


@contextmanager
def sagemaker_twin(
    root: Path,
    state_dir: Path,
    console: Any,
    variants: tuple[Variant, ...] = (),
    naive: bool = True,
    model: str | None = None,
) -> Iterator[SageMakerTwinTarget]:
    """The lambda target's twin with a SageMaker Serverless endpoint serving the same model beside it."""
    from functions.sagemaker.endpoint import EndpointConfig
    from scripts.twin.sagemaker_config import EndpointSpec

    model_dir = bench_model(console, model)
    # keep_alive: containers go only when a cold sample resets them.
    # One intra-op thread, as the Lambda functions get at 2048 MB (one vCPU), so the two compare like for like.
    spec = EndpointSpec(
        EndpointConfig(SAGEMAKER_ENDPOINT, max_concurrency=2, environment={"PREHEAT_THREADS": "1"}),
        model_dir,
        keep_alive_s=3600.0,
    )
    with lambda_twin(
        root, state_dir, console, endpoints=(spec,), variants=variants, naive=naive, model=model
    ) as functions:
        yield SageMakerTwinTarget(functions, SAGEMAKER_ENDPOINT, str(model_dir))
