"""One EMF metrics blob and one JSON log line per invocation.

Metrics (namespace configurable, dimensions `service` and `start`):
  Invocations, ColdStarts, Errors (5xx), ClientErrors (4xx): Count, on every invocation (0 or 1),
    so rates are Sum/Sum and no series has gaps;
  Latency: Milliseconds, on every request except warm-up pings. For `cold` it includes this
    instance's init, because the request waited for it; Lambda's own REPORT line has the same split;
  InitDuration: Milliseconds, once per instance, on its first invocation.
Request bodies are never logged.
"""

from __future__ import annotations

from typing import Any

from functions.metrics.coldstart import Start
from functions.metrics.emf import COUNT, MILLISECONDS, EmfWriter
from functions.metrics.logs import JsonLogger, configure_stdlib


class Telemetry:
    def __init__(self, *, service: str, namespace: str, init_ms: float) -> None:
        self.init_ms = init_ms
        self.emf = EmfWriter(namespace, {"service": service})
        self.log = JsonLogger(service)
        # The serving core logs through stdlib `logging.getLogger("preheat")`; same JSON layout.
        configure_stdlib("preheat", service)

    def record(
        self,
        start: Start,
        *,
        latency_ms: float,
        status: int,
        route: str,
        request_id: str,
        error_code: str | None = None,
        cache: str | None = None,
    ) -> None:
        metrics: dict[str, tuple[float, str]] = {}
        if start.first:
            metrics["InitDuration"] = (self.init_ms, MILLISECONDS)
        if start.kind != "warmup":
            total = latency_ms + (self.init_ms if start.kind == "cold" else 0.0)
            metrics["Latency"] = (round(total, 3), MILLISECONDS)
        metrics["Invocations"] = (1, COUNT)
        metrics["ColdStarts"] = (1 if start.kind == "cold" else 0, COUNT)
        metrics["Errors"] = (1 if status >= 500 else 0, COUNT)
        metrics["ClientErrors"] = (1 if 400 <= status < 500 else 0, COUNT)
        self.emf.emit(metrics, {"start": start.kind})
        fields: dict[str, Any] = {
            "start": start.kind,
            "first_invocation": start.first,
            "instance_id": start.instance_id,
            "route": route,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "request_id": request_id,
        }
        if start.first:
            fields["init_ms"] = round(self.init_ms, 3)
        if error_code:
            fields["error_code"] = error_code
        if cache:
            fields["cache"] = cache
        self.log.info("invocation", "record", **fields)
