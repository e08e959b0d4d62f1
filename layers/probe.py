"""Prove that layers work: serve a real request in a fresh interpreter whose sys.path holds only
Lambda's task root and the layers, the way the python3.12 runtime would.

`run_probe` starts `python -S -P` (no site-packages, no script directory on sys.path) with
PYTHONPATH = task root + layer dirs and PYTHONDONTWRITEBYTECODE=1 (layers are read-only in Lambda).
The child imports functions.inference.handler, posts one request through a Function URL event (by
default the model's own sample, layers/model_requests.py), fetches /openapi.json (the FastAPI
fallback) and reports what it imported from where.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers import paths
from layers.model_requests import ModelRequests, Request

# Runs in the child. Keep it to the standard library until the handler import.
_CHILD = r"""
import json, sys, time
started = time.perf_counter()
leaks = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
import functions.inference.handler as handler
init_ms = (time.perf_counter() - started) * 1000

class Context:
    aws_request_id = "probe-0001"
    function_name = "preheat-probe"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:preheat-probe"
    def get_remaining_time_in_millis(self):
        return 30000

def event(method, path, body):
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "probe.lambda-url.us-east-1.on.aws"},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "probe"},
                           "requestId": "probe-0001", "routeKey": "$default", "stage": "$default",
                           "accountId": "123456789012", "apiId": "probe", "domainName": "probe",
                           "domainPrefix": "probe", "time": "23/Nov/2026:00:00:00 +0000",
                           "timeEpoch": 0},
        "body": body, "isBase64Encoded": False,
    }

path, body = json.loads(sys.argv[1])
served = handler.handler(event("POST", path, json.dumps(body)), Context())
openapi = handler.handler(event("GET", "/openapi.json", None), Context())
modules = {
    name: getattr(module, "__file__", None) or ""
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
}
cached = {
    name: getattr(module, "__cached__", None) or ""
    for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
}
print("PROBE-RESULT " + json.dumps({
    "init_ms": init_ms, "sys_path": sys.path, "leaks": leaks,
    "served": served, "openapi_status": openapi.get("statusCode"),
    "modules": modules, "cached": cached, "cache_tag": sys.implementation.cache_tag,
}))
"""


@dataclass(frozen=True)
class ProbeResult:
    init_ms: float
    sys_path: tuple[str, ...]
    leaks: tuple[str, ...]
    status: int
    body: dict[str, Any]
    openapi_status: int
    modules: dict[str, str]  # module name -> file it was imported from
    cached: dict[str, str]  # module name -> the .pyc the import system would use
    cache_tag: str
    stdout: str


def task_root(target: Path) -> Path:
    """What a Lambda function package holds: the functions/ package only (no layers/, scripts/…)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        paths.FUNCTIONS, target / "functions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


def run_probe(
    python: Path,
    task: Path,
    layer_sites: list[Path],
    model_dir: Path,
    request: Request | None = None,
    *,
    timeout: float = 240,
) -> ProbeResult:
    """`request`: what to send (default: a sample request of the model in model_dir)."""
    request = ModelRequests.of(model_dir).sample() if request is None else request
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(p) for p in [task, *layer_sites]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PREHEAT_MODEL_DIR": str(model_dir),
        "PREHEAT_THREADS": "1",
        "POWERTOOLS_SERVICE_NAME": "preheat-probe",
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_LAMBDA_FUNCTION_NAME": "preheat-probe",
    }
    result = subprocess.run(
        [str(python), "-S", "-P", "-c", _CHILD, json.dumps([request.path, request.body])],
        env=env,
        cwd=str(task),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("PROBE-RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(
            f"the layer probe failed (exit {result.returncode}):\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
        )
    data = json.loads(line.removeprefix("PROBE-RESULT "))
    served = data["served"]
    return ProbeResult(
        init_ms=float(data["init_ms"]),
        sys_path=tuple(data["sys_path"]),
        leaks=tuple(data["leaks"]),
        status=int(served["statusCode"]),
        body=json.loads(served.get("body") or "{}"),
        openapi_status=int(data["openapi_status"] or 0),
        modules=dict(data["modules"]),
        cached=dict(data["cached"]),
        cache_tag=str(data["cache_tag"]),
        stdout=result.stdout,
    )


def local_python() -> Path:
    """The interpreter the deps-local layer was built for (this one)."""
    return Path(sys.executable)
